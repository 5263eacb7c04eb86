// The transport I/O thread's wait: one epoll over raw descriptors (sockets' ZMQ_FDs, the
// wake eventfd) that remembers which fired, so the loop looks only at those sockets; and
// the eventfd other threads write to wake it (WakeFd).
// zmq_poll would poll once without waiting before every wait, and its callers check every
// socket's ZMQ_EVENTS after each wake; each such check costs libzmq a poll and a getpid
// system call, which dominated a small message's round trip.
// epoll rather than poll(2) because another thread may take a descriptor out of the wait
// and put it back without waking the waiter (Pause/Resume): a thread blocked in a call
// waits on its own connection's descriptor, and two threads woken by the same reply
// would contend for the socket lock on a busy machine.
#pragma once

#include <sys/epoll.h>

#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace sy::transport {

class WakeFd {
 public:
  WakeFd() = default;
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;
  ~WakeFd();

  absl::Status Open();
  int fd() const { return fd_; }
  void Wake();   // any thread, after Open
  void Drain();  // the waiting thread, after the descriptor fired

 private:
  int fd_ = -1;
};

// One waiting thread uses Clear/Add/Wait and the Fired queries; Pause, Resume and Renew
// may be called from any thread.
class IoPollSet {
 public:
  IoPollSet() = default;
  IoPollSet(const IoPollSet&) = delete;
  IoPollSet& operator=(const IoPollSet&) = delete;
  ~IoPollSet();

  absl::Status Open();
  // The descriptors of the next Wait: Clear, then Add each. Only changes reach the kernel.
  void Clear();
  void Add(int fd);
  // Waits until a descriptor is readable or `timeout_ms` passes (-1: no limit); an
  // interrupted wait counts as nothing fired. What fired in the last wait is kept until the next.
  void Wait(int timeout_ms);
  bool Fired(int fd) const;
  bool AnyFired(const std::vector<int>& fds) const;
  bool AnyFired() const { return !fired_.empty(); }
  void MarkFired(int fd) { fired_.push_back(fd); }  // to be looked at as if it had fired
  void ForgetFired() { fired_.clear(); }

  // After sockets were made or closed (a descriptor's number may now name another socket):
  // the next Wait registers every descriptor afresh, none paused.
  void Renew();
  // Wait no longer reports `fd` (another thread waits on it), until Resume; a waiter already
  // asleep is not woken. Resume reports it again, at once if it is readable.
  void Pause(int fd);
  void Resume(int fd);

 private:
  void Register(int fd) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  int epoll_fd_ = -1;
  std::vector<int> wanted_;  // sorted by Wait
  std::vector<int> fired_;
  std::vector<epoll_event> events_;
  absl::Mutex mu_;
  std::vector<int> registered_ ABSL_GUARDED_BY(mu_);  // sorted
  std::vector<int> paused_ ABSL_GUARDED_BY(mu_);
  bool renew_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sy::transport
