// ZmqTransport implementation: the I/O thread, the socket lock and the queues around them.
#include "common/transport/zmq_transport.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/transport/bounded_queue.h"
#include "common/transport/fd_limit.h"
#include "common/transport/send_budget.h"
#include "common/transport/zmq_endpoint.h"

namespace sy::transport {
namespace {

// Messages read from one socket per pass of the I/O loop when delivering on the I/O
// thread, so every socket gets its turn and sends are flushed between batches.
constexpr int kDeliveryBatch = 64;

class ZmqTransportImpl final : public ZmqTransport {
 public:
  explicit ZmqTransportImpl(ZmqOptions options)
      : options_(std::move(options)),
        context_(1),
        budget_(options_.send_queue),
        inbound_(options_.receive_queue, [](const Message& m) { return m.ByteSize(); }) {
    if (options_.metrics != nullptr) {
      const metrics::Labels labels = {{"node", options_.node_id}};
      unroutable_counter_ = &options_.metrics->GetCounter(
          "sy_transport_unroutable_total", "Messages dropped because the peer was gone.", labels);
      rejected_counter_ = &options_.metrics->GetCounter(
          "sy_transport_send_rejected_total", "Send calls refused (queue full, unknown peer).", labels);
    }
  }

  ~ZmqTransportImpl() override { Close(); }

  absl::Status Start() {
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", errno));
    io_thread_ = std::thread([this] { IoLoop(); });
    return absl::OkStatus();
  }

  const std::string& node_id() const override { return options_.node_id; }

  absl::StatusOr<std::string> Bind(const std::string& endpoint) override {
    absl::StatusOr<std::string> result = absl::InternalError("bind did not run");
    absl::Status run = RunOnIoThread([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
      if (router_.socket != nullptr) {
        result = absl::FailedPreconditionError("already bound");
        return;
      }
      absl::StatusOr<Endpoint> router = BindRouter(context_, options_, endpoint, &zap_, &cap_);
      if (!router.ok()) {
        result = router.status();
        return;
      }
      result = router->socket->get(zmq::sockopt::last_endpoint);
      router_ = *std::move(router);
    });
    if (!run.ok()) return run;
    return result;
  }

  absl::Status Connect(const std::string& peer, const std::string& endpoint) override {
    absl::Status result;
    absl::Status run = RunOnIoThread([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
      if (dealers_.count(peer) > 0) {
        result = absl::AlreadyExistsError(absl::StrCat("already connected to ", peer));
        return;
      }
      absl::StatusOr<Endpoint> dealer = ConnectDealer(context_, options_, peer, endpoint, &monitor_);
      if (!dealer.ok()) {
        result = dealer.status();
        return;
      }
      dealers_[peer] = *std::move(dealer);
      absl::MutexLock lock(&mu_);
      connected_peers_.insert(peer);
    });
    if (!run.ok()) return run;
    return result;
  }

  absl::Status Disconnect(const std::string& peer) override {
    absl::Status result;
    absl::Status run = RunOnIoThread([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
      auto it = dealers_.find(peer);
      if (it == dealers_.end()) {
        result = absl::NotFoundError(absl::StrCat("not connected to ", peer));
        return;
      }
      if (monitor_ != nullptr) monitor_->Unwatch(*it->second.socket, peer);
      for (const Message& message : it->second.pending) Unroutable(message);
      dealers_.erase(it);  // closes the socket (linger 0)
      absl::MutexLock lock(&mu_);
      connected_peers_.erase(peer);
    });
    if (!run.ok()) return run;
    return result;
  }

  absl::Status Send(Message message, absl::Time deadline) override {
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return absl::FailedPreconditionError("transport closed");
      if (message.address.route == Route::kConnected && connected_peers_.count(message.address.peer) == 0) {
        CountRejected();
        return absl::NotFoundError(absl::StrCat("not connected to ", message.address.peer));
      }
    }
    absl::Status admitted = OnIoThread() ? AcquireOnIoThread(message.ByteSize(), deadline)
                                         : budget_.Acquire(message.ByteSize(), deadline);
    if (!admitted.ok()) {
      CountRejected();
      return admitted;
    }
    if (SendNow(message)) return absl::OkStatus();
    {
      absl::MutexLock lock(&mu_);
      outbound_.push_back(std::move(message));
    }
    Wake();
    return absl::OkStatus();
  }

  absl::StatusOr<Message> Receive(absl::Time deadline) override {
    const bool was_full = inbound_.Full();
    absl::StatusOr<Message> message = inbound_.Pop(deadline);
    if (was_full) Wake();  // the I/O thread stopped reading while full
    return message;
  }

  bool DeliverOnIoThread(std::function<void(Message)> deliver) override {
    absl::Status run = RunOnIoThread([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
      deliver_ = std::move(deliver);
      if (stalled_.has_value()) to_deliver_.push_back(*std::move(stalled_));
      stalled_.reset();
      for (absl::StatusOr<Message> queued = inbound_.Pop(absl::InfinitePast()); queued.ok();
           queued = inbound_.Pop(absl::InfinitePast())) {
        to_deliver_.push_back(*std::move(queued));
      }
    });
    return run.ok();
  }

  void Close() override {
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      closed_ = true;
    }
    budget_.Close();
    inbound_.Close();
    Wake();
    if (io_thread_.joinable()) io_thread_.join();
    if (wake_fd_ >= 0) close(wake_fd_);
    wake_fd_ = -1;
  }

  TransportStats stats() const override {
    TransportStats s;
    s.sent = sent_.load();
    s.received = received_.load();
    s.send_rejected = send_rejected_.load();
    s.unroutable = unroutable_.load();
    s.dropped_oversize = dropped_oversize_.load();
    s.dropped_unauthenticated = dropped_unauthenticated_.load();
    s.max_outbound_depth = budget_.max_count();
    s.max_inbound_depth = inbound_.max_depth();
    absl::MutexLock lock(&mu_);
    s.connected_peers = connected_peers_.size();
    return s;
  }

 private:
  void Wake() {
    const uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof(one));
  }

  bool OnIoThread() const { return std::this_thread::get_id() == io_thread_id_.load(); }

  void CountRejected() {
    ++send_rejected_;
    if (rejected_counter_ != nullptr) rejected_counter_->Increment();
  }

  // Runs `fn` on the I/O thread under the socket lock, and waits. Called on the I/O thread
  // (from a delivered message or a callback), it runs `fn` there and then.
  absl::Status RunOnIoThread(std::function<void()> fn) {
    const bool here = OnIoThread();
    std::promise<void> done;
    std::future<void> finished = done.get_future();
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return absl::FailedPreconditionError("transport closed");
      if (!here) {
        commands_.push_back([&fn, &done] {
          fn();
          done.set_value();
        });
      }
    }
    if (here) {
      absl::MutexLock io(&io_mu_);
      fn();
      Wake();  // the loop polls the sockets it armed: a new one must be armed first
      return absl::OkStatus();
    }
    Wake();
    finished.wait();
    return absl::OkStatus();
  }

  // Writes `message` from the calling thread when the socket lock is free and no other
  // thread's message waits for the I/O thread (order per peer is kept). True when the message
  // is dealt with: sent, counted unroutable, or queued behind a full socket for the I/O thread.
  bool SendNow(Message& message) {
    if (!io_mu_.TryLock()) return false;
    bool done = false, wake = false;
    Endpoint* endpoint = EndpointFor(message.address);
    if (endpoint != nullptr && NothingOutbound()) {  // older messages for it go first (Flush)
      done = true;
      const bool is_router = message.address.route == Route::kBound;
      endpoint->pending.push_back(std::move(message));
      wake = !Flush(*endpoint, is_router);  // blocked: the I/O thread retries
      // Sending may have consumed the I/O thread's ZMQ_FD signal of input that came meanwhile.
      wake = wake || Readable(*endpoint->socket);
    }
    io_mu_.Unlock();
    if (wake) Wake();
    return done;
  }

  bool NothingOutbound() {
    absl::MutexLock lock(&mu_);
    return outbound_.empty();
  }

  Endpoint* EndpointFor(const Address& address) ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
    if (address.route == Route::kBound) return router_.socket != nullptr ? &router_ : nullptr;
    auto it = dealers_.find(address.peer);
    return it != dealers_.end() ? &it->second : nullptr;
  }

  // On the I/O thread nobody else would drain the send queue: wait for room by sending.
  absl::Status AcquireOnIoThread(size_t bytes, absl::Time deadline) {
    while (true) {
      absl::Status admitted = budget_.Acquire(bytes, std::min(deadline, absl::Now() + absl::Milliseconds(1)));
      if (!absl::IsResourceExhausted(admitted) || absl::Now() >= deadline) return admitted;
      absl::MutexLock io(&io_mu_);
      TakeOutbound();
      FlushAll();
    }
  }

  // Moves what other threads queued into the endpoints' pending queues, in order.
  void TakeOutbound() ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
    std::deque<Message> outbound;
    {
      absl::MutexLock lock(&mu_);
      outbound.swap(outbound_);
    }
    for (Message& message : outbound) Enqueue(std::move(message));
  }

  void IoLoop() {
    io_thread_id_ = std::this_thread::get_id();
    std::vector<zmq::pollitem_t> items;
    while (true) {
      uint64_t ignored;
      (void)!read(wake_fd_, &ignored, sizeof(ignored));
      bool stopping = false, router_blocked = false, work_left = false, reading = false;
      items.clear();
      {
        absl::MutexLock io(&io_mu_);
        std::deque<std::function<void()>> commands;
        {
          absl::MutexLock lock(&mu_);
          commands.swap(commands_);
          stopping = closed_;
        }
        for (auto& command : commands) command();
        TakeOutbound();
        if (stopping) {
          CloseSockets();
          return;
        }
        router_blocked = !FlushAll();
        if (router_.socket != nullptr) work_left |= ReadAll(router_, /*is_router=*/true, "");
        for (auto& [peer, endpoint] : dealers_) work_left |= ReadAll(endpoint, /*is_router=*/false, peer);
        reading = Reading();  // once: the poll below must wait the way ArmPoll armed it
        work_left |= ArmPoll(reading, items);
      }
      if (zap_ != nullptr) zap_->AnswerAll();
      if (monitor_ != nullptr) monitor_->ReadAll();
      if (cap_ != nullptr) cap_->ReadAll();
      // A send that queued or saw input, or a socket made or closed, wakes the loop again.
      DeliverReceived();
      if (work_left) continue;
      items.push_back({nullptr, wake_fd_, ZMQ_POLLIN, 0});
      if (zap_ != nullptr) items.push_back({zap_->socket().handle(), 0, ZMQ_POLLIN, 0});
      if (monitor_ != nullptr) monitor_->AddPollItems(items);
      if (cap_ != nullptr) items.push_back({cap_->events().handle(), 0, ZMQ_POLLIN, 0});
      const bool poll_soon = router_blocked || !reading;
      try {
        zmq::poll(items.data(), items.size(), std::chrono::milliseconds(poll_soon ? 2 : -1));
      } catch (const zmq::error_t&) {
        // EINTR: loop again.
      }
    }
  }

  // Drops unsent messages; sockets close with linger 0.
  void CloseSockets() ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
    zap_.reset();
    monitor_.reset();
    cap_.reset();
    router_ = Endpoint();
    dealers_.clear();
  }

  // Lists the ZMQ_FDs to wait on, checking each socket's ZMQ_EVENTS first (which also
  // clears a signal already seen). True when a socket already has work: do not wait.
  bool ArmPoll(bool reading, std::vector<zmq::pollitem_t>& items) ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
    bool work = false;
    auto arm = [&](Endpoint& endpoint, bool wants_out) {
      const int events = endpoint.socket->get(zmq::sockopt::events);
      work |= (reading && (events & ZMQ_POLLIN)) || (wants_out && (events & ZMQ_POLLOUT));
      items.push_back({nullptr, endpoint.fd, ZMQ_POLLIN, 0});
    };
    // A ROUTER reports POLLOUT when ANY peer is writable, so a message blocked on one slow
    // peer is retried on a short timer instead of by POLLOUT.
    if (router_.socket != nullptr) arm(router_, false);
    for (auto& [peer, endpoint] : dealers_) arm(endpoint, !endpoint.pending.empty());
    return work;
  }

  // Hands what was read to the receiver (outside the socket lock: it may send).
  void DeliverReceived() {
    std::vector<Message> batch;
    batch.swap(to_deliver_);
    for (Message& message : batch) {
      ++received_;
      deliver_(std::move(message));
    }
  }

  void Enqueue(Message message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
    Endpoint* endpoint = EndpointFor(message.address);
    if (endpoint == nullptr) {
      Unroutable(message);
      return;
    }
    endpoint->pending.push_back(std::move(message));
  }

  void Sent(const Message& message) {
    ++sent_;
    budget_.Release(message.ByteSize());
  }

  void Unroutable(const Message& message) {
    ++unroutable_;
    if (unroutable_counter_ != nullptr) unroutable_counter_->Increment();
    budget_.Release(message.ByteSize());
  }

  // Flushes every endpoint; false when the ROUTER is blocked on a peer.
  bool FlushAll() ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
    bool router_flushed = true;
    if (router_.socket != nullptr) router_flushed = Flush(router_, /*is_router=*/true);
    for (auto& [peer, endpoint] : dealers_) Flush(endpoint, /*is_router=*/false);
    return router_flushed;
  }

  // Sends pending messages until the socket would block. Returns false if blocked.
  bool Flush(Endpoint& endpoint, bool is_router) ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
    while (!endpoint.pending.empty()) {
      Message& message = endpoint.pending.front();
      switch (SendWhole(*endpoint.socket, message, is_router)) {
        case SendOutcome::kSent:
          Sent(message);
          break;
        case SendOutcome::kUnroutable:
          Unroutable(message);
          break;
        case SendOutcome::kWouldBlock:
          return false;
      }
      endpoint.pending.pop_front();
    }
    return true;
  }

  // Reads whole messages: for the receiver on the I/O thread, a batch; else while the
  // receive queue has room (a message that does not fit yet waits in stalled_, and reading
  // stops, until Receive makes room). True when the batch ended with input left.
  bool ReadAll(Endpoint& endpoint, bool is_router, const std::string& peer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
    std::vector<zmq::message_t> parts;
    for (int read = 0; Reading(); ++read) {
      if (deliver_ != nullptr && read == kDeliveryBatch) return true;
      if (!ReceiveWhole(*endpoint.socket, &parts)) return false;
      Message message;
      switch (MessageFromParts(parts, endpoint, is_router, peer, options_, zap_ != nullptr, &message)) {
        case Admission::kAdmitted:
          break;
        case Admission::kEmpty:
          continue;
        case Admission::kUnauthenticated:
          ++dropped_unauthenticated_;
          continue;
        case Admission::kOversize:
          ++dropped_oversize_;  // could never be queued
          continue;
      }
      if (deliver_ != nullptr) {
        to_deliver_.push_back(std::move(message));
      } else {
        stalled_ = std::move(message);
      }
    }
    return false;
  }

  // Whether the loop reads now: always for the receiver on the I/O thread, else while the
  // receive queue has room.
  bool Reading() { return deliver_ != nullptr || (DeliverStalled() && !inbound_.Full()); }

  // Moves the stalled message into the receive queue if it fits. True when none is left.
  bool DeliverStalled() {
    if (!stalled_.has_value()) return true;
    if (!inbound_.TryPush(*stalled_)) return false;
    stalled_.reset();
    ++received_;
    return true;
  }

  const ZmqOptions options_;
  zmq::context_t context_;
  int wake_fd_ = -1;
  std::thread io_thread_;
  std::atomic<std::thread::id> io_thread_id_{};
  SendBudget budget_;
  BoundedQueue<Message> inbound_;

  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::function<void()>> commands_ ABSL_GUARDED_BY(mu_);
  std::deque<Message> outbound_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> connected_peers_ ABSL_GUARDED_BY(mu_);

  // The socket lock, taken before mu_ when both are held.
  absl::Mutex io_mu_;
  Endpoint router_ ABSL_GUARDED_BY(io_mu_);
  std::map<std::string, Endpoint> dealers_ ABSL_GUARDED_BY(io_mu_);

  // I/O thread only.
  std::unique_ptr<ZapHandler> zap_;  // with a CURVE server
  std::unique_ptr<SocketMonitor> monitor_;  // with options_.on_connection_lost, once a DEALER exists
  std::unique_ptr<ConnectionCap> cap_;      // with options_.max_connections, once bound
  std::optional<Message> stalled_;  // received, waiting for room in inbound_
  std::function<void(Message)> deliver_;  // set by DeliverOnIoThread
  std::vector<Message> to_deliver_;  // read for deliver_, handed over outside the socket lock

  std::atomic<uint64_t> sent_{0}, received_{0}, send_rejected_{0}, unroutable_{0}, dropped_oversize_{0};
  std::atomic<uint64_t> dropped_unauthenticated_{0};
  metrics::Counter* unroutable_counter_ = nullptr;
  metrics::Counter* rejected_counter_ = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ZmqTransport>> ZmqTransport::Create(ZmqOptions options) {
  if (options.node_id.empty()) return absl::InvalidArgumentError("ZmqOptions.node_id is required");
  if (absl::Status keys = CheckCurveKeys(options.curve); !keys.ok()) return keys;
  RaiseOpenFileLimitOnce();  // one descriptor per peer connection
  auto transport = std::make_unique<ZmqTransportImpl>(std::move(options));
  absl::Status started = transport->Start();
  if (!started.ok()) return started;
  return std::unique_ptr<ZmqTransport>(std::move(transport));
}

}  // namespace sy::transport
