// What a blocking RpcNode::Call waits on: the call's outcome, set once by its callback
// on whatever thread ends the call, plus an eventfd that the setting writes, so the
// waiting thread can sleep in poll(2) on the eventfd beside a socket it reads itself
// (Transport::ReceiveHere). The eventfd is the calling thread's, kept for its next calls
// (a call costs no descriptor made and closed). Set writes it only from another thread
// than the waiting one; a late write from an earlier call only wakes the next one early,
// which then waits again.
#pragma once

#include <memory>
#include <optional>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/io_poll_set.h"

namespace sy::transport {

class ReplyWaiter {
 public:
  // On the thread that will wait.
  ReplyWaiter();

  // -1 when no eventfd could be opened: then only Wait works.
  int fd() const { return wake_ != nullptr ? wake_->fd() : -1; }
  void Set(absl::StatusOr<DecodedMessage> outcome);
  bool Done();
  // Empties the eventfd after it fired, for the next wait on it.
  void Drain();
  // Blocks until Set, and returns the outcome.
  absl::StatusOr<DecodedMessage> Wait();

 private:
  std::shared_ptr<WakeFd> wake_;  // shared with the thread: open until both are done with it
  const std::thread::id waiting_thread_;
  absl::Mutex mu_;
  std::optional<absl::StatusOr<DecodedMessage>> outcome_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sy::transport
