// RpcNode: requests and replies on top of any Transport, written once for every service.
//
// Client side: Call/CallAsync stamp the envelope (sender, a fresh request id, the
// deadline), send it, and match the reply by request id. A request unanswered after
// its attempt timeout is sent again with the SAME id (bounded attempts, growing
// timeouts) until the deadline, which ends the call with DeadlineExceeded. A reply
// counts only when it comes from the peer (address) the request went to. A reply
// over the size limits (header or whole message) ends its call at once with
// ResourceExhausted "reply too large".
// Server side: every received message is checked at the door (DecodedMessage); a
// malformed one is counted and answered with InvalidArgument, and serving goes on; one
// over the size limits is also counted in sy_refused_total{reason="oversized"} and logged
// (rate-limited, see refusals.h).
// A request is handed to the handler once per (sending peer, request id): a duplicate is
// answered from the ReplyCache, or ignored while the first is still in progress.
//
// Counters (in the Registry from RpcOptions, or a private one), labelled by node:
// sy_rpc_malformed_total, sy_rpc_retries_total, sy_rpc_duplicates_answered_total,
// sy_rpc_duplicates_in_progress_total, sy_rpc_unmatched_replies_total, sy_rpc_replies_from_wrong_peer_total,
// sy_rpc_send_failures_total, sy_rpc_deadline_exceeded_total; the gauge sy_rpc_cached_replies.
// Each request says the lowest id its sender still waits on (Envelope.answeredBelow), so the
// receiver keeps only the replies of calls still in flight, not the last reply_cache_entries.
// A request carries its deadline as a time to live (Envelope.ttlMs), which the receiver turns
// into DecodedMessage::deadline() on its own clock.
//
// Thread-safe. Received messages are dispatched on one thread: the transport's I/O thread
// when it delivers there (Transport::DeliverOnIoThread, e.g. ZmqTransport), else an
// internal thread that receives; an internal thread runs the retry timers. Handlers and
// callbacks run on the dispatching thread, so they must hand long work to other threads
// (an actor) and reply later through the Responder, from any thread.
//
//   RpcNode::Create(std::move(transport), {}, [](DecodedMessage req, Responder r) {
//     capnp::MallocMessageBuilder b; b.initRoot<proto::Envelope>(); r.Reply(b); });
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <capnp/message.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/metrics/registry.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/transport.h"

namespace sy::transport {

struct RpcOptions {
  EnvelopeLimits limits;
  size_t reply_cache_entries = 4096;
  size_t reply_cache_bytes = 64u << 20;
  int max_attempts = 5;                                    // sends per call, first one included
  absl::Duration attempt_timeout = absl::Milliseconds(200);  // before the first retry
  double backoff_multiplier = 2.0;                         // each later attempt waits longer
  absl::Duration max_attempt_timeout = absl::Seconds(5);
  absl::Duration reply_send_timeout = absl::Seconds(1);    // how long a reply may wait for queue room
  metrics::Registry* metrics = nullptr;                    // null: a private registry
};

// Payload key carrying a placement epoch (decimal text) with a status, e.g. Aborted on a
// stale epoch: set it on the status given to Responder::Fail and the caller's status has it.
inline constexpr absl::string_view kCurrentEpochPayload = "type.switchyard/current_epoch";

class RpcCore;

// Answers one request. Call Reply or Fail once; later calls are ignored. Copyable,
// thread-safe, may outlive the handler call (not the RpcNode's usefulness: after
// Close, replies are dropped).
class Responder {
 public:
  // `header`'s root must be a proto::Envelope; the kind, body and tensors are the
  // caller's, routing fields (sender, request id, isReply) are filled in here.
  void Reply(capnp::MessageBuilder& header, std::vector<Frame> data = {});
  void Fail(const absl::Status& status);

 private:
  friend class RpcCore;
  struct State;
  std::shared_ptr<State> state_;
};

class RpcNode {
 public:
  using Handler = std::function<void(DecodedMessage request, Responder responder)>;
  using Callback = std::function<void(absl::StatusOr<DecodedMessage> reply)>;

  // `handler` may be null for a pure client (requests then get Unimplemented).
  static absl::StatusOr<std::unique_ptr<RpcNode>> Create(std::unique_ptr<Transport> transport,
                                                         RpcOptions options, Handler handler);
  ~RpcNode();

  Transport& transport();
  metrics::Registry& metrics();

  // Sends a request whose header root is a proto::Envelope with kind/body/tensors set.
  // `done` runs exactly once: with the reply, or the reply's error status, or
  // DeadlineExceeded, or ResourceExhausted ("reply too large") for a reply over the
  // limits, or the Send error (ResourceExhausted after waiting until the deadline for
  // queue room, NotFound for an unknown peer).
  //   node->CallAsync({"host-1"}, b, {}, absl::Now() + absl::Seconds(2),
  //                   [](absl::StatusOr<DecodedMessage> r) { ... });
  void CallAsync(const Address& to, capnp::MessageBuilder& header, std::vector<Frame> data,
                 absl::Time deadline, Callback done);
  // Blocking form of CallAsync. Over a transport that allows it (ZmqTransport), the calling
  // thread reads its reply from the connection itself (Transport::ReceiveHere) instead of
  // being woken by the I/O thread: one thread wake-up less per call.
  absl::StatusOr<DecodedMessage> Call(const Address& to, capnp::MessageBuilder& header,
                                      std::vector<Frame> data, absl::Time deadline);

  // Stops the receive thread and closes the transport; pending calls end with Cancelled.
  void Close();

 private:
  explicit RpcNode(std::shared_ptr<RpcCore> core);
  std::shared_ptr<RpcCore> core_;
};

}  // namespace sy::transport
