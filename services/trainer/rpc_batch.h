// Sends a batch of requests concurrently over one RpcNode and waits for every
// reply: how the trainer overlaps the buckets of a layer, the dense pushes of a
// micro-batch (with the next micro-batch's compute), and the step messages to
// every host. Each call keeps RpcNode's retries with the same request id until
// the shared deadline. With a CallGuard, a call a host refused for a stale
// placement epoch (Aborted carrying transport::kCurrentEpochPayload) is sent again
// (bounded) after the guard refreshed the placement, re-routed and re-stamped,
// unless a rollback came meanwhile; a rollback (guard->aborted()) ends the wait
// at once with Aborted.
// Thread-safe (each batch waits on its own state).
//
//   std::vector<OutgoingCall> calls = ...;   // one per host/bucket
//   auto replies = CallAll(node, calls, absl::Now() + absl::Seconds(30), &guard);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <capnp/message.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/transport/rpc.h"

namespace sy::trainer {

// How many times one call is sent again after stale-epoch refusals.
inline constexpr int kMaxStaleEpochResends = 3;

struct OutgoingCall {
  transport::Address to;
  std::unique_ptr<capnp::MallocMessageBuilder> header = std::make_unique<capnp::MallocMessageBuilder>();
  std::vector<transport::Frame> data;
  std::string what;  // context for errors, e.g. "forward step 3 micro-batch 1 layer 1 expert 5 on host 0"
  // Where the call goes under the current placement (re-evaluated after a refresh);
  // null: always `to`.
  std::function<transport::Address()> route;
};

// The trainer's hooks into every batch (implemented by the distributed trainer;
// tests fake it). Methods may be called from any thread that waits on a batch.
class CallGuard {
 public:
  virtual ~CallGuard() = default;
  // Brings the placement to an epoch >= `epoch` (bounded wait); an error ends the stale calls with it.
  virtual absl::Status RefreshPlacement(uint64_t epoch) = 0;
  // The epoch to stamp on requests (the placement's).
  virtual uint64_t epoch() const = 0;
  // True while a rollback asks the running step to stop: waits end with Aborted.
  virtual bool aborted() const = 0;
};

// The current epoch a host named when it refused a request as stale, if `status` is such a refusal.
std::optional<uint64_t> StaleEpochOf(const absl::Status& status);

// A batch of calls in flight: Start sends them all, Wait returns the replies in
// the order of the calls (an error keeps its code and gains the call's `what`).
// Movable; Wait once.
class PendingCalls {
 public:
  // `guard` (may be null) must outlive Wait.
  static PendingCalls Start(transport::RpcNode& node, std::vector<OutgoingCall> calls, absl::Time deadline,
                            CallGuard* guard = nullptr);
  std::vector<absl::StatusOr<transport::DecodedMessage>> Wait();
  // The calls (after Wait: as last sent).
  std::vector<OutgoingCall>& calls() { return calls_; }

 private:
  struct Shared;
  static std::shared_ptr<Shared> Send(transport::RpcNode& node, std::vector<OutgoingCall>& calls,
                                      const std::vector<size_t>& which, absl::Time deadline);
  static void Await(Shared& shared, CallGuard* guard);

  transport::RpcNode* node_ = nullptr;
  std::vector<OutgoingCall> calls_;
  absl::Time deadline_;
  CallGuard* guard_ = nullptr;
  std::shared_ptr<Shared> shared_;
};

// Start + Wait; `calls` are as last sent afterwards.
std::vector<absl::StatusOr<transport::DecodedMessage>> CallAll(transport::RpcNode& node,
                                                               std::vector<OutgoingCall>& calls, absl::Time deadline,
                                                               CallGuard* guard = nullptr);

// The first error of `replies` (OK when all succeeded).
absl::Status FirstError(const std::vector<absl::StatusOr<transport::DecodedMessage>>& replies);

// Data bytes (tensor frames) and header bytes a call sends.
uint64_t CallBytes(OutgoingCall& call);

}  // namespace sy::trainer
