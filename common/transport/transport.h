// The raw transport: moves Messages between named peers. No request ids, retries
// or validation here; those live once, above it, in RpcNode (rpc.h).
//
// Implementations: ZmqTransport (ROUTER bind / DEALER connect over ZeroMQ, one I/O
// thread owning every socket), InProcTransport (same process, for unit tests and
// single-process mode) and FaultyTransport (wraps any transport, injects faults).
//
// Every implementation is thread-safe: any thread may call Send and Receive.
// Queues are bounded in messages and bytes: Send waits for room until its deadline
// and then fails with ResourceExhausted; memory stays bounded.
//
//   ZmqOptions options; options.node_id = "trainer-0";
//   auto t = ZmqTransport::Create(options);
//   (*t)->Connect("host-1", "tcp://127.0.0.1:6001");
//   (*t)->Send(std::move(msg), absl::Now() + absl::Seconds(1));
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/transport/message.h"

namespace sy::transport {

// Counters every transport keeps (also exported to a metrics registry when given one).
struct TransportStats {
  uint64_t sent = 0;            // messages handed to the wire / peer
  uint64_t received = 0;        // messages queued for Receive
  uint64_t send_rejected = 0;   // Send calls that failed (queue full past deadline, unknown peer)
  uint64_t unroutable = 0;      // messages dropped after Send because the peer vanished
  uint64_t dropped_oversize = 0;  // received messages larger than the receive queue's byte limit
  uint64_t dropped_unauthenticated = 0;  // received with an allowlist, from a key or routing id it does not match
  size_t max_outbound_depth = 0;  // high-water mark of the outbound queue (messages)
  size_t max_inbound_depth = 0;   // high-water mark of the inbound queue (messages)
  size_t connected_peers = 0;     // connections open now (Connect, less Disconnect)
  uint64_t received_here = 0;     // of `received`: taken by a waiting caller (ReceiveHere)
};

class Transport {
 public:
  virtual ~Transport() = default;

  // The node id this transport sends as (its ZeroMQ routing id).
  virtual const std::string& node_id() const = 0;
  // Listens on `endpoint` (e.g. "tcp://127.0.0.1:*"); returns the resolved endpoint.
  virtual absl::StatusOr<std::string> Bind(const std::string& endpoint) = 0;
  // Opens a connection to `endpoint`, reachable afterwards as Address{peer, kConnected}.
  virtual absl::Status Connect(const std::string& peer, const std::string& endpoint) = 0;
  // Closes the connection to `peer` (a node that left or moved to another endpoint), dropping
  // what is still queued for it; Send to it is then NotFound until it is connected again.
  // NotFound when `peer` is not connected.
  virtual absl::Status Disconnect(const std::string& peer) = 0;
  // Queues `message` for message.address; waits for room until `deadline`.
  // ResourceExhausted: queue still full at the deadline. NotFound: no such connected peer.
  // FailedPrecondition: closed. InvalidArgument: larger than the queue could ever hold.
  virtual absl::Status Send(Message message, absl::Time deadline) = 0;
  // Next received message, its address set to the sender. DeadlineExceeded when none
  // arrived by `deadline`; Cancelled once closed.
  virtual absl::StatusOr<Message> Receive(absl::Time deadline) = 0;
  // Optional: hands every received message (those already queued first) to `deliver`, called
  // on the transport's own I/O thread, instead of queueing it for Receive: no thread hand-off
  // between the wire and the receiver. `deliver` must return quickly (hand long work to
  // another thread); it may call Send, Connect and Disconnect. False when the transport has
  // no such thread (keep calling Receive). Call at most once.
  virtual bool DeliverOnIoThread(std::function<void(Message)> deliver) {
    (void)deliver;
    return false;
  }
  // Optional, after DeliverOnIoThread: a thread that waits for one message from the connected
  // `peer` (a blocking call's reply) reads that peer's connection itself, saving the hand-off
  // from the I/O thread (a thread wake-up, the largest part of a small round trip). Each
  // message read is offered to `mine` (called under the socket lock: quick, and no calls
  // into the transport); the first it accepts goes to `taken`, the others to the receiver on
  // the I/O thread as usual, in order. Returns after taking one, when `wake_fd` is readable
  // (the caller drains it), or at `deadline`. False, at once, when it cannot (no such
  // support, no receiver on the I/O thread, or called on the I/O thread): wait some other way.
  virtual bool ReceiveHere(const std::string& peer, int wake_fd, absl::Time deadline,
                           const std::function<bool(const Message&)>& mine, std::optional<Message>* taken) {
    (void)peer, (void)wake_fd, (void)deadline, (void)mine, (void)taken;
    return false;
  }
  // Optional: Send, by a thread that then calls ReceiveHere for the message's peer at least
  // once (a blocking call's request). That read looks at the connection before it waits, so
  // the send need not check for input that came meanwhile: two system calls fewer. The
  // default is Send.
  virtual absl::Status SendBeforeReceiveHere(Message message, absl::Time deadline) {
    return Send(std::move(message), deadline);
  }
  // Stops I/O; pending Receive calls return Cancelled. Idempotent.
  virtual void Close() = 0;
  virtual TransportStats stats() const = 0;
};

// Limits shared by the implementations.
struct QueueLimits {
  size_t max_messages = 1024;
  size_t max_bytes = 256u << 20;  // 256 MiB
};

}  // namespace sy::transport
