// IoPollSet: epoll over the I/O thread's descriptors, remembering which fired; WakeFd.
#include "common/transport/io_poll_set.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <cerrno>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace sy::transport {

WakeFd::~WakeFd() {
  if (fd_ >= 0) close(fd_);
}

absl::Status WakeFd::Open() {
  fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", errno));
  return absl::OkStatus();
}

void WakeFd::Wake() {
  const uint64_t one = 1;
  (void)!write(fd_, &one, sizeof(one));
}

void WakeFd::Drain() {
  uint64_t count;
  (void)!read(fd_, &count, sizeof(count));
}

IoPollSet::~IoPollSet() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::Status IoPollSet::Open() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return absl::InternalError(absl::StrCat("epoll_create1: ", errno));
  return absl::OkStatus();
}

void IoPollSet::Clear() { wanted_.clear(); }

void IoPollSet::Add(int fd) { wanted_.push_back(fd); }

void IoPollSet::Register(int fd) {
  epoll_event event{};
  event.events = std::binary_search(paused_.begin(), paused_.end(), fd) ? 0u : static_cast<uint32_t>(EPOLLIN);
  event.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) == 0) {
    registered_.insert(std::upper_bound(registered_.begin(), registered_.end(), fd), fd);
  }
}

void IoPollSet::Wait(int timeout_ms) {
  fired_.clear();
  std::sort(wanted_.begin(), wanted_.end());
  wanted_.erase(std::unique(wanted_.begin(), wanted_.end()), wanted_.end());
  {
    absl::MutexLock lock(&mu_);
    if (renew_) {
      for (int fd : registered_) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);  // closed ones are gone already
      registered_.clear();
      paused_.clear();
      renew_ = false;
    }
    std::vector<int> gone;
    std::set_difference(registered_.begin(), registered_.end(), wanted_.begin(), wanted_.end(),
                        std::back_inserter(gone));
    for (int fd : gone) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      registered_.erase(std::lower_bound(registered_.begin(), registered_.end(), fd));
    }
    for (int fd : wanted_) {
      if (!std::binary_search(registered_.begin(), registered_.end(), fd)) Register(fd);
    }
    events_.resize(std::max<size_t>(1, registered_.size()));
  }
  const int n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
  for (int i = 0; i < n; ++i) fired_.push_back(events_[i].data.fd);  // n < 0: EINTR, nothing fired
}

void IoPollSet::Renew() {
  absl::MutexLock lock(&mu_);
  renew_ = true;
}

void IoPollSet::Pause(int fd) {
  absl::MutexLock lock(&mu_);
  paused_.insert(std::upper_bound(paused_.begin(), paused_.end(), fd), fd);
  epoll_event event{};
  event.data.fd = fd;
  (void)epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);  // not registered yet: Register pauses it
}

void IoPollSet::Resume(int fd) {
  absl::MutexLock lock(&mu_);
  auto it = std::lower_bound(paused_.begin(), paused_.end(), fd);
  if (it == paused_.end() || *it != fd) return;  // renewed meanwhile
  paused_.erase(it);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd;
  (void)epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);  // readable now: the waiter wakes
}

bool IoPollSet::Fired(int fd) const { return std::find(fired_.begin(), fired_.end(), fd) != fired_.end(); }

bool IoPollSet::AnyFired(const std::vector<int>& fds) const {
  return std::any_of(fds.begin(), fds.end(), [this](int fd) { return Fired(fd); });
}

}  // namespace sy::transport
