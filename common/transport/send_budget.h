// Admission control for a transport's send path: counts messages and bytes from
// Send() until the wire took them, so memory held by unsent messages stays
// bounded. Send waits for room until its deadline. Thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/transport/transport.h"

namespace sy::transport {

class SendBudget {
 public:
  explicit SendBudget(QueueLimits limits) : limits_(limits) {}

  absl::Status Acquire(size_t bytes, absl::Time deadline) {
    if (bytes > limits_.max_bytes) {
      return absl::InvalidArgumentError("message larger than the send queue's byte limit");
    }
    absl::MutexLock lock(&mu_);
    auto fits = [&] { return closed_ || (count_ < limits_.max_messages && bytes_ + bytes <= limits_.max_bytes); };
    mu_.AwaitWithDeadline(absl::Condition(&fits), deadline);
    if (closed_) return absl::FailedPreconditionError("transport closed");
    if (!(count_ < limits_.max_messages && bytes_ + bytes <= limits_.max_bytes)) {
      return absl::ResourceExhaustedError("send queue full (messages or bytes) until the deadline");
    }
    ++count_;
    bytes_ += bytes;
    max_count_ = std::max(max_count_, count_);
    return absl::OkStatus();
  }
  void Release(size_t bytes) {
    absl::MutexLock lock(&mu_);
    --count_;
    bytes_ -= bytes;
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  size_t max_count() const {
    absl::MutexLock lock(&mu_);
    return max_count_;
  }

 private:
  const QueueLimits limits_;
  mutable absl::Mutex mu_;
  size_t count_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_count_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sy::transport
