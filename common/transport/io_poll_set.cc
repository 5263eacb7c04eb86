// IoPollSet: poll(2) over the I/O thread's descriptors, remembering which fired.
#include "common/transport/io_poll_set.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
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

void IoPollSet::Clear() { fds_.clear(); }

void IoPollSet::Add(int fd) { fds_.push_back({fd, POLLIN, 0}); }

void IoPollSet::Wait(int timeout_ms) {
  fired_.clear();
  if (poll(fds_.data(), fds_.size(), timeout_ms) <= 0) return;  // timeout, or EINTR
  for (const pollfd& p : fds_) {
    if (p.revents != 0) fired_.push_back(p.fd);
  }
}

bool IoPollSet::Fired(int fd) const { return std::find(fired_.begin(), fired_.end(), fd) != fired_.end(); }

bool IoPollSet::AnyFired(const std::vector<int>& fds) const {
  return std::any_of(fds.begin(), fds.end(), [this](int fd) { return Fired(fd); });
}

}  // namespace sy::transport
