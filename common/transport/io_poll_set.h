// The transport I/O thread's wait: one poll(2) over raw descriptors (sockets' ZMQ_FDs, the
// wake eventfd) that remembers which fired, so the loop looks only at those sockets; and
// the eventfd other threads write to wake it (WakeFd).
// zmq_poll would poll once without waiting before every wait, and its callers check every
// socket's ZMQ_EVENTS after each wake; each such check costs libzmq a poll and a getpid
// system call, which dominated a small message's round trip.
#pragma once

#include <poll.h>

#include <vector>

#include "absl/status/status.h"

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

class IoPollSet {
 public:
  // Forgets the descriptors; what fired in the last wait is kept until the next.
  void Clear();
  void Add(int fd);
  // Waits until a descriptor is readable or `timeout_ms` passes (-1: no limit); an
  // interrupted wait counts as nothing fired.
  void Wait(int timeout_ms);
  bool Fired(int fd) const;
  bool AnyFired(const std::vector<int>& fds) const;
  bool AnyFired() const { return !fired_.empty(); }
  void MarkFired(int fd) { fired_.push_back(fd); }  // to be looked at as if it had fired
  void ForgetFired() { fired_.clear(); }

 private:
  std::vector<pollfd> fds_;
  std::vector<int> fired_;
};

}  // namespace sy::transport
