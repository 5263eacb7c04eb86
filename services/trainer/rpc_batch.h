// Sends a batch of requests concurrently over one RpcNode and waits for every
// reply: how the trainer overlaps the buckets of a layer, the dense pushes of a
// micro-batch (with the next micro-batch's compute), and the step messages to
// every host. Each call keeps RpcNode's
// retries with the same request id until the shared deadline.
// Thread-safe (each CallAll waits on its own state).
//
//   std::vector<OutgoingCall> calls = ...;   // one per host/bucket
//   auto replies = CallAll(node, calls, absl::Now() + absl::Seconds(30));
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <capnp/message.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/transport/rpc.h"

namespace sy::trainer {

struct OutgoingCall {
  transport::Address to;
  std::unique_ptr<capnp::MallocMessageBuilder> header = std::make_unique<capnp::MallocMessageBuilder>();
  std::vector<transport::Frame> data;
  std::string what;  // context for errors, e.g. "forward step 3 micro-batch 1 layer 1 expert 5 on host 0"
};

// A batch of calls in flight: Start sends them all, Wait returns the replies in
// the order of the calls (an error keeps its code and gains the call's `what`).
// Movable; Wait once.
class PendingCalls {
 public:
  static PendingCalls Start(transport::RpcNode& node, std::vector<OutgoingCall>& calls, absl::Time deadline);
  std::vector<absl::StatusOr<transport::DecodedMessage>> Wait();

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

// Start + Wait.
std::vector<absl::StatusOr<transport::DecodedMessage>> CallAll(transport::RpcNode& node,
                                                               std::vector<OutgoingCall>& calls, absl::Time deadline);

// The first error of `replies` (OK when all succeeded).
absl::Status FirstError(const std::vector<absl::StatusOr<transport::DecodedMessage>>& replies);

// Data bytes (tensor frames) and header bytes a call sends.
uint64_t CallBytes(OutgoingCall& call);

}  // namespace sy::trainer
