// A FIFO bounded by both message count and total bytes, for the transports' send and
// receive queues. Push waits for room until a deadline (backpressure); Pop waits for
// a message. Thread-safe (one mutex). The byte size of an element comes from a
// caller-supplied function so the queue works for any element type.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/transport/transport.h"

namespace sy::transport {

template <typename T>
class BoundedQueue {
 public:
  using SizeFn = std::function<size_t(const T&)>;
  BoundedQueue(QueueLimits limits, SizeFn size_of) : limits_(limits), size_of_(std::move(size_of)) {}

  // Appends `item`, waiting until it fits or `deadline`. ResourceExhausted if still full,
  // InvalidArgument if it could never fit, FailedPrecondition once closed.
  absl::Status Push(T item, absl::Time deadline) {
    const size_t bytes = size_of_(item);
    if (bytes > limits_.max_bytes) {
      return absl::InvalidArgumentError("message larger than the queue's byte limit");
    }
    absl::MutexLock lock(&mu_);
    auto has_room = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return closed_ || FitsLocked(bytes); };
    mu_.AwaitWithDeadline(absl::Condition(&has_room), deadline);
    if (closed_) return absl::FailedPreconditionError("queue closed");
    if (!FitsLocked(bytes)) {
      return absl::ResourceExhaustedError("queue full (messages or bytes) until the deadline");
    }
    bytes_ += bytes;
    items_.push_back(std::move(item));
    max_depth_ = std::max(max_depth_, items_.size());
    return absl::OkStatus();
  }

  // Appends `item` (moved from) if it fits now; otherwise leaves it untouched and returns
  // false. Never waits. Items larger than the byte limit never fit (see FitsEver).
  bool TryPush(T& item) {
    const size_t bytes = size_of_(item);
    absl::MutexLock lock(&mu_);
    if (closed_ || !FitsLocked(bytes)) return false;
    bytes_ += bytes;
    items_.push_back(std::move(item));
    max_depth_ = std::max(max_depth_, items_.size());
    return true;
  }
  bool FitsEver(const T& item) const { return size_of_(item) <= limits_.max_bytes; }

  // Removes the oldest item, waiting until `deadline`. DeadlineExceeded if none; Cancelled
  // once closed and empty.
  absl::StatusOr<T> Pop(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return closed_ || !items_.empty(); };
    mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
    if (items_.empty()) {
      if (closed_) return absl::CancelledError("queue closed");
      return absl::DeadlineExceededError("no message before the deadline");
    }
    T item = std::move(items_.front());
    items_.pop_front();
    bytes_ -= size_of_(item);
    return item;
  }

  bool Full() const {
    absl::MutexLock lock(&mu_);
    return items_.size() >= limits_.max_messages || bytes_ >= limits_.max_bytes;
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return items_.size();
  }
  // Largest number of items ever held at once.
  size_t max_depth() const {
    absl::MutexLock lock(&mu_);
    return max_depth_;
  }

 private:
  bool FitsLocked(size_t bytes) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return items_.size() < limits_.max_messages && bytes_ + bytes <= limits_.max_bytes;
  }

  const QueueLimits limits_;
  const SizeFn size_of_;
  mutable absl::Mutex mu_;
  std::deque<T> items_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_depth_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sy::transport
