// ZmqTransport's implementation class, shared by its two source files: zmq_transport.cc
// (what any thread calls: Send, Receive, ReceiveHere, connection changes run on the I/O
// thread) and zmq_io_loop.cc (the I/O thread's loop and the socket moves under the socket
// lock). Private to common/transport; users include zmq_transport.h.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/transport/bounded_queue.h"
#include "common/transport/io_poll_set.h"
#include "common/transport/send_budget.h"
#include "common/transport/zmq_endpoint.h"
#include "common/transport/zmq_transport.h"

namespace sy::transport {

// Messages read from one socket per pass of the I/O loop when delivering on the I/O
// thread (and by a waiting caller per look), so every socket gets its turn and sends are
// flushed between batches.
inline constexpr int kDeliveryBatch = 64;

class ZmqTransportImpl final : public ZmqTransport {
 public:
  explicit ZmqTransportImpl(ZmqOptions options);

  ~ZmqTransportImpl() override { Close(); }

  absl::Status Start();

  const std::string& node_id() const override { return options_.node_id; }

  absl::StatusOr<std::string> Bind(const std::string& endpoint) override;

  absl::Status Connect(const std::string& peer, const std::string& endpoint) override;

  absl::Status Disconnect(const std::string& peer) override;

  absl::Status Send(Message message, absl::Time deadline) override {
    return SendFrom(std::move(message), deadline, false);
  }

  absl::Status SendBeforeReceiveHere(Message message, absl::Time deadline) override {
    return SendFrom(std::move(message), deadline, true);
  }

  absl::StatusOr<Message> Receive(absl::Time deadline) override;

  bool DeliverOnIoThread(std::function<void(Message)> deliver) override;

  bool ReceiveHere(const std::string& peer, int wake_fd, absl::Time deadline,
                   const std::function<bool(const Message&)>& mine, std::optional<Message>* taken) override;

  void Close() override;

  TransportStats stats() const override;

 private:
  bool OnIoThread() const { return std::this_thread::get_id() == io_thread_id_.load(); }

  void CountRejected();

  // Runs `fn` on the I/O thread under the socket lock, and waits. Called on the I/O thread
  // (from a delivered message or a callback), it runs `fn` there and then.
  absl::Status RunOnIoThread(std::function<void()> fn);

  // Send; `reader_follows`: the calling thread reads the peer's connection next (ReceiveHere).
  absl::Status SendFrom(Message message, absl::Time deadline, bool reader_follows);

  // Writes `message` from the calling thread when the socket lock is free and no other
  // thread's message waits for the I/O thread (order per peer is kept). True when the message
  // is dealt with: sent, counted unroutable, or queued behind a full socket for the I/O thread.
  // `reader_follows`: as in SendFrom.
  bool SendNow(Message& message, bool reader_follows);

  bool NothingOutbound();

  Endpoint* EndpointFor(const Address& address) ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);

  // On the I/O thread nobody else would drain the send queue: wait for room by sending.
  absl::Status AcquireOnIoThread(size_t bytes, absl::Time deadline);

  // Moves what other threads queued into the endpoints' pending queues, in order.
  void TakeOutbound() ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);

  // Each pass looks at the sockets whose ZMQ_FD fired (all after a wake: commands, a send
  // that may have taken a socket's signal, room in the receive queue), reads them until
  // they would block (which re-arms their ZMQ_FDs), delivers, and waits in one poll(2).
  void IoLoop();

  // Reads a socket until it would block (which re-arms its ZMQ_FD). A blocked send or a
  // paused reader leaves its signal unread: that socket's state is checked, which re-arms
  // it too. True when work is left for another pass.
  bool LookAt(Endpoint& endpoint, bool is_router, const std::string& peer, bool reading)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);

  // Drops unsent messages; sockets close with linger 0.
  void CloseSockets() ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);

  // Hands what was read to the receiver (outside the socket lock: it may send).
  void DeliverReceived();

  void Enqueue(Message message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);

  void Sent(const Message& message);

  void Unroutable(const Message& message);

  // Flushes every endpoint; false when the ROUTER is blocked on a peer.
  bool FlushAll() ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);

  // Sends pending messages until the socket would block. Returns false if blocked.
  bool Flush(Endpoint& endpoint, bool is_router) ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);
  // Sends `message` whole unless the socket would block, counting it sent or unroutable.
  SendOutcome SendOne(Endpoint& endpoint, const Message& message, bool is_router)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);

  // Reads whole messages: for the receiver on the I/O thread, a batch; else while the
  // receive queue has room (a message that does not fit yet waits in stalled_, and reading
  // stops, until Receive makes room). True when the batch ended with input left.
  bool ReadAll(Endpoint& endpoint, bool is_router, const std::string& peer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);

  // Reads the next message of `endpoint` that passes admission without waiting (the others
  // are counted and dropped); false when none is waiting.
  bool ReadAdmitted(Endpoint& endpoint, bool is_router, const std::string& peer, Message* message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);

  // Whether the loop reads now: always for the receiver on the I/O thread, else while the
  // receive queue has room.
  bool Reading() { return deliver_ != nullptr || (DeliverStalled() && !inbound_.Full()); }

  // Moves the stalled message into the receive queue if it fits. True when none is left.
  bool DeliverStalled();

  const ZmqOptions options_;
  zmq::context_t context_;
  WakeFd wake_;
  std::thread io_thread_;
  std::atomic<std::thread::id> io_thread_id_{};
  SendBudget budget_;
  BoundedQueue<Message> inbound_;

  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Vectors swapped with the I/O thread's scratch ones (running_, taking_), so that
  // neither side allocates once both reached their working size.
  std::vector<std::function<void()>> commands_ ABSL_GUARDED_BY(mu_);
  std::vector<Message> outbound_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> connected_peers_ ABSL_GUARDED_BY(mu_);

  // The socket lock, taken before mu_ when both are held.
  absl::Mutex io_mu_;
  Endpoint router_ ABSL_GUARDED_BY(io_mu_);
  std::map<std::string, Endpoint> dealers_ ABSL_GUARDED_BY(io_mu_);
  std::vector<zmq::message_t> parts_ ABSL_GUARDED_BY(io_mu_);  // one received message's frames
  std::vector<Message> handed_over_ ABSL_GUARDED_BY(io_mu_);   // read by ReceiveHere, not taken
  std::vector<Message> taking_ ABSL_GUARDED_BY(io_mu_);        // outbound_, being enqueued

  // I/O thread only (helpers_.zap and deliver_ are also read under the socket lock, which
  // the I/O thread holds while it sets them).
  HelperSockets helpers_;
  std::optional<Message> stalled_;  // received, waiting for room in inbound_
  std::function<void(Message)> deliver_;  // set by DeliverOnIoThread
  std::vector<Message> to_deliver_;  // read for deliver_, handed over outside the socket lock
  std::vector<Message> delivering_;  // to_deliver_, being handed over
  std::vector<std::function<void()>> running_;  // commands_, being run
  IoPollSet poll_;  // the loop's wait; SendNow marks the sockets it sent on as fired

  std::atomic<uint64_t> sent_{0}, received_{0}, send_rejected_{0}, unroutable_{0}, dropped_oversize_{0};
  std::atomic<uint64_t> dropped_unauthenticated_{0}, received_here_{0};
  metrics::Counter* unroutable_counter_ = nullptr;
  metrics::Counter* rejected_counter_ = nullptr;
};

}  // namespace sy::transport
