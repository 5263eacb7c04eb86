// What a blocking RpcNode::Call waits on: the call's outcome, set once by its callback
// on whatever thread ends the call, plus an eventfd that the setting writes, so the
// waiting thread can sleep in poll(2) on the eventfd beside a socket it reads itself
// (Transport::ReceiveHere).
#pragma once

#include <optional>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/io_poll_set.h"

namespace sy::transport {

class ReplyWaiter {
 public:
  ReplyWaiter();

  // -1 when no eventfd could be opened: then only Wait works.
  int fd() const { return wake_.fd(); }
  void Set(absl::StatusOr<DecodedMessage> outcome);
  bool Done();
  // Empties the eventfd after it fired, for the next wait on it.
  void Drain();
  // Blocks until Set, and returns the outcome.
  absl::StatusOr<DecodedMessage> Wait();

 private:
  WakeFd wake_;
  absl::Mutex mu_;
  std::optional<absl::StatusOr<DecodedMessage>> outcome_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sy::transport
