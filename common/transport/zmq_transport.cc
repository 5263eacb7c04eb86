// ZmqTransport implementation: the I/O thread, the socket lock and the queues around them.
#include "common/transport/zmq_transport.h"

#include <algorithm>
#include <atomic>
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
#include "common/transport/io_poll_set.h"
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
    if (absl::Status opened = wake_.Open(); !opened.ok()) return opened;
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
      absl::StatusOr<Endpoint> router = BindRouter(context_, options_, endpoint, &helpers_.zap, &helpers_.cap);
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
      absl::StatusOr<Endpoint> dealer = ConnectDealer(context_, options_, peer, endpoint, &helpers_.monitor);
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
      if (helpers_.monitor != nullptr) helpers_.monitor->Unwatch(*it->second.socket, peer);
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
    wake_.Wake();
    return absl::OkStatus();
  }

  absl::StatusOr<Message> Receive(absl::Time deadline) override {
    const bool was_full = inbound_.Full();
    absl::StatusOr<Message> message = inbound_.Pop(deadline);
    if (was_full) wake_.Wake();  // the I/O thread stopped reading while full
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
    wake_.Wake();
    if (io_thread_.joinable()) io_thread_.join();
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
      wake_.Wake();  // the loop polls the sockets it armed: a new one must be armed first
      return absl::OkStatus();
    }
    wake_.Wake();
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
      // Sending may have consumed the I/O thread's ZMQ_FD signal of input that came meanwhile:
      // the I/O thread looks at the socket before it waits; another thread checks it now.
      if (OnIoThread()) {
        poll_.MarkFired(endpoint->fd);
      } else {
        wake = wake || Readable(*endpoint->socket);
      }
    }
    io_mu_.Unlock();
    if (wake) wake_.Wake();
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
      wake_.Wake();  // the loop must look at the sockets sent on
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

  // Each pass looks at the sockets whose ZMQ_FD fired (all after a wake: commands, a send
  // that may have taken a socket's signal, room in the receive queue), reads them until
  // they would block (which re-arms their ZMQ_FDs), delivers, and waits in one poll(2).
  void IoLoop() {
    io_thread_id_ = std::this_thread::get_id();
    IoPollSet& poll = poll_;
    std::vector<int> helper_fds;  // the ZAP, monitor and connection-cap sockets' ZMQ_FDs
    bool look_at_all = true;
    while (true) {
      if (poll.Fired(wake_.fd())) {
        wake_.Drain();
        look_at_all = true;
      }
      bool stopping = false, router_blocked = false, work_left = false, reading = false;
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
        const uint64_t handled = sent_ + unroutable_;
        router_blocked = !FlushAll();
        look_at_all |= sent_ + unroutable_ != handled;  // a send may take a socket's input signal
        reading = Reading();
        auto due = [&](const Endpoint& e) { return look_at_all || poll.Fired(e.fd) || !e.pending.empty(); };
        if (router_.socket != nullptr && due(router_)) work_left |= LookAt(router_, /*is_router=*/true, "", reading);
        for (auto& [peer, endpoint] : dealers_) {
          if (due(endpoint)) work_left |= LookAt(endpoint, /*is_router=*/false, peer, reading);
        }
        reading = Reading();  // reading may have filled the receive queue: then wait briefly
        poll.Clear();
        poll.Add(wake_.fd());
        if (router_.socket != nullptr) poll.Add(router_.fd);
        for (auto& [peer, endpoint] : dealers_) poll.Add(endpoint.fd);
      }
      const bool helpers_due = look_at_all || poll.AnyFired(helper_fds);
      poll.ForgetFired();  // from here on: the sockets this thread sends on (SendNow)
      if (helpers_due) helpers_.ReadAll(helper_fds);  // a monitor's callback may send
      // A send that queued or saw input, or a socket made or closed, wakes the loop again.
      DeliverReceived();
      look_at_all = work_left;
      if (work_left || poll.AnyFired()) continue;
      for (int fd : helper_fds) poll.Add(fd);
      poll.Wait(router_blocked || !reading ? 2 : -1);
      look_at_all |= router_blocked || !reading;  // the short wait is a retry timer
    }
  }

  // Reads a socket until it would block (which re-arms its ZMQ_FD). A blocked send or a
  // paused reader leaves its signal unread: that socket's state is checked, which re-arms
  // it too. True when work is left for another pass.
  bool LookAt(Endpoint& endpoint, bool is_router, const std::string& peer, bool reading)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
    bool work = reading && ReadAll(endpoint, is_router, peer);
    if (!endpoint.pending.empty() || !reading) {
      const int events = endpoint.socket->get(zmq::sockopt::events);
      work |= (reading && (events & ZMQ_POLLIN)) || (!is_router && !endpoint.pending.empty() && (events & ZMQ_POLLOUT));
    }
    return work;
  }

  // Drops unsent messages; sockets close with linger 0.
  void CloseSockets() ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
    helpers_ = HelperSockets();
    router_ = Endpoint();
    dealers_.clear();
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
    if (endpoint == nullptr) return Unroutable(message);
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
      switch (MessageFromParts(parts, endpoint, is_router, peer, options_, helpers_.zap != nullptr, &message)) {
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
  WakeFd wake_;
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
  HelperSockets helpers_;
  std::optional<Message> stalled_;  // received, waiting for room in inbound_
  std::function<void(Message)> deliver_;  // set by DeliverOnIoThread
  std::vector<Message> to_deliver_;  // read for deliver_, handed over outside the socket lock
  IoPollSet poll_;  // the loop's wait; SendNow marks the sockets it sent on as fired

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
