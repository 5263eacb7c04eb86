// ZmqTransport implementation: the I/O thread, its sockets and the queues feeding it.
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
#include "common/transport/send_budget.h"
#include "common/transport/connection_cap.h"
#include "common/transport/fd_limit.h"
#include "common/transport/zap_handler.h"

namespace sy::transport {
namespace {

// A socket and the messages waiting for it to become writable. I/O thread only.
struct Endpoint {
  std::unique_ptr<zmq::socket_t> socket;
  std::deque<Message> pending;
  std::optional<PeerIdentity> server;  // a DEALER's: the allowlisted node it connected to
};

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
    absl::Status run = RunOnIoThread([&] {
      if (router_.socket != nullptr) {
        result = absl::FailedPreconditionError("already bound");
        return;
      }
      try {
        auto socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::router);
        ConfigureSocket(*socket);
        socket->set(zmq::sockopt::router_mandatory, 1);
        if (!options_.curve.server_secret.empty()) {
          if (zap_ == nullptr) {
            zap_ = std::make_unique<ZapHandler>(context_, options_.curve.allowed_clients, options_.curve.allowlist,
                                                options_.metrics);
          }
          socket->set(zmq::sockopt::curve_server, 1);
          socket->set(zmq::sockopt::curve_secretkey, options_.curve.server_secret);
        }
        auto cap = ConnectionCap::Watch(context_, *socket, options_.max_connections, options_.metrics);
        if (!cap.ok()) {
          result = cap.status();
          return;
        }
        cap_ = *std::move(cap);  // null without a cap
        socket->bind(endpoint);
        result = socket->get(zmq::sockopt::last_endpoint);
        router_.socket = std::move(socket);
      } catch (const zmq::error_t& e) {
        cap_.reset();
        result = absl::InvalidArgumentError(absl::StrCat("bind ", endpoint, ": ", e.what()));
      }
    });
    if (!run.ok()) return run;
    return result;
  }

  absl::Status Connect(const std::string& peer, const std::string& endpoint) override {
    absl::Status result;
    absl::Status run = RunOnIoThread([&] {
      if (dealers_.count(peer) > 0) {
        result = absl::AlreadyExistsError(absl::StrCat("already connected to ", peer));
        return;
      }
      try {
        Endpoint dealer;
        absl::StatusOr<std::string> server_key = ServerKeyOf(peer, &dealer.server);
        if (!server_key.ok()) {
          result = server_key.status();
          return;
        }
        auto socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
        ConfigureSocket(*socket);
        socket->set(zmq::sockopt::routing_id, options_.node_id);
        if (!server_key->empty()) {
          socket->set(zmq::sockopt::curve_serverkey, *server_key);
          socket->set(zmq::sockopt::curve_publickey, options_.curve.client_public);
          socket->set(zmq::sockopt::curve_secretkey, options_.curve.client_secret);
        }
        if (options_.on_connection_lost) {
          if (monitor_ == nullptr) monitor_ = std::make_unique<SocketMonitor>(context_, options_.on_connection_lost);
          if (absl::Status watched = monitor_->Watch(*socket, peer); !watched.ok()) {
            result = watched;
            return;
          }
        }
        socket->connect(endpoint);
        dealer.socket = std::move(socket);
        dealers_[peer] = std::move(dealer);
        absl::MutexLock lock(&mu_);
        connected_peers_.insert(peer);
      } catch (const zmq::error_t& e) {
        result = absl::InvalidArgumentError(absl::StrCat("connect ", endpoint, ": ", e.what()));
      }
    });
    if (!run.ok()) return run;
    return result;
  }

  absl::Status Disconnect(const std::string& peer) override {
    absl::Status result;
    absl::Status run = RunOnIoThread([&] {
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
    absl::Status admitted = budget_.Acquire(message.ByteSize(), deadline);
    if (!admitted.ok()) {
      CountRejected();
      return admitted;
    }
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
  void ConfigureSocket(zmq::socket_t& socket) {
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::sndhwm, options_.send_hwm);
    socket.set(zmq::sockopt::rcvhwm, options_.receive_hwm);
    socket.set(zmq::sockopt::maxmsgsize, options_.max_frame_bytes);
  }

  void Wake() {
    const uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof(one));
  }

  void CountRejected() {
    ++send_rejected_;
    if (rejected_counter_ != nullptr) rejected_counter_->Increment();
  }

  // Runs `fn` on the I/O thread (sockets are touched by that thread only) and waits.
  absl::Status RunOnIoThread(std::function<void()> fn) {
    std::promise<void> done;
    std::future<void> finished = done.get_future();
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return absl::FailedPreconditionError("transport closed");
      commands_.push_back([&fn, &done] {
        fn();
        done.set_value();
      });
    }
    Wake();
    finished.wait();
    return absl::OkStatus();
  }

  void IoLoop() {
    bool stopping = false;
    while (!stopping) {
      uint64_t ignored;
      (void)!read(wake_fd_, &ignored, sizeof(ignored));
      std::deque<std::function<void()>> commands;
      std::deque<Message> outbound;
      {
        absl::MutexLock lock(&mu_);
        commands.swap(commands_);
        outbound.swap(outbound_);
        stopping = closed_;
      }
      for (auto& command : commands) command();
      for (Message& message : outbound) Enqueue(std::move(message));
      if (stopping) break;

      bool router_blocked = false;
      if (router_.socket != nullptr) router_blocked = !Flush(router_, /*is_router=*/true);
      for (auto& [peer, endpoint] : dealers_) Flush(endpoint, /*is_router=*/false);
      if (zap_ != nullptr) zap_->AnswerAll();
      if (router_.socket != nullptr) ReadAll(router_, /*is_router=*/true, "");
      for (auto& [peer, endpoint] : dealers_) ReadAll(endpoint, /*is_router=*/false, peer);
      if (monitor_ != nullptr) monitor_->ReadAll();
      if (cap_ != nullptr) cap_->ReadAll();

      const bool reading = DeliverStalled() && !inbound_.Full();
      std::vector<zmq::pollitem_t> items;
      items.push_back({nullptr, wake_fd_, ZMQ_POLLIN, 0});
      auto add = [&](Endpoint& endpoint, bool want_out) {
        short events = (reading ? ZMQ_POLLIN : 0) | (want_out ? ZMQ_POLLOUT : 0);
        items.push_back({endpoint.socket->handle(), 0, events, 0});
      };
      // A ROUTER reports POLLOUT when ANY peer is writable, so a message blocked on
      // one slow peer is retried on a short timer instead of by POLLOUT.
      if (router_.socket != nullptr) add(router_, false);
      if (zap_ != nullptr) items.push_back({zap_->socket().handle(), 0, ZMQ_POLLIN, 0});
      for (auto& [peer, endpoint] : dealers_) add(endpoint, !endpoint.pending.empty());
      if (monitor_ != nullptr) monitor_->AddPollItems(items);
      if (cap_ != nullptr) items.push_back({cap_->events().handle(), 0, ZMQ_POLLIN, 0});
      const bool poll_soon = router_blocked || !reading;
      try {
        zmq::poll(items.data(), items.size(), std::chrono::milliseconds(poll_soon ? 2 : -1));
      } catch (const zmq::error_t&) {
        // EINTR: loop again.
      }
    }
    // Drop unsent messages; sockets close with linger 0.
    zap_.reset();
    monitor_.reset();
    cap_.reset();
    router_ = Endpoint();
    dealers_.clear();
  }

  void Enqueue(Message message) {
    if (message.address.route == Route::kBound) {
      if (router_.socket == nullptr) {
        Unroutable(message);
        return;
      }
      router_.pending.push_back(std::move(message));
    } else {
      auto it = dealers_.find(message.address.peer);
      if (it == dealers_.end()) {
        Unroutable(message);
        return;
      }
      it->second.pending.push_back(std::move(message));
    }
  }

  void Unroutable(const Message& message) {
    ++unroutable_;
    if (unroutable_counter_ != nullptr) unroutable_counter_->Increment();
    budget_.Release(message.ByteSize());
  }

  // Sends pending messages until the socket would block. Returns false if blocked.
  bool Flush(Endpoint& endpoint, bool is_router) {
    while (!endpoint.pending.empty()) {
      Message& message = endpoint.pending.front();
      const size_t bytes = message.ByteSize();
      try {
        bool accepted;
        if (is_router) {
          zmq::message_t identity(message.address.peer.data(), message.address.peer.size());
          accepted = endpoint.socket->send(identity, zmq::send_flags::sndmore | zmq::send_flags::dontwait).has_value();
          if (!accepted) return false;
          // Once the first part is accepted the rest of the message is accepted too.
          endpoint.socket->send(message.header.ToZmq(),
                                message.data.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore);
        } else {
          const zmq::send_flags more = message.data.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore;
          accepted = endpoint.socket->send(message.header.ToZmq(), more | zmq::send_flags::dontwait).has_value();
          if (!accepted) return false;
        }
        for (size_t i = 0; i < message.data.size(); ++i) {
          const bool last = i + 1 == message.data.size();
          endpoint.socket->send(message.data[i].ToZmq(), last ? zmq::send_flags::none : zmq::send_flags::sndmore);
        }
        ++sent_;
        budget_.Release(bytes);
      } catch (const zmq::error_t& e) {
        // EHOSTUNREACH (ROUTER_MANDATORY): the peer is not connected to us.
        Unroutable(message);
      }
      endpoint.pending.pop_front();
    }
    return true;
  }

  // The CURVE server key for a DEALER to `peer`: the single server_public when set (a
  // client of one server), else the allowlist's key of the peer's node (its identity goes
  // to `server`), else "" (plain TCP). NotFound when the allowlist does not name the node.
  absl::StatusOr<std::string> ServerKeyOf(const std::string& peer, std::optional<PeerIdentity>* server) {
    if (!options_.curve.server_public.empty()) return options_.curve.server_public;
    if (options_.curve.allowlist == nullptr) return std::string();
    const std::string node = NodeOfPeer(peer);
    std::optional<std::string> key = options_.curve.allowlist->KeyOf(node);
    if (!key.has_value()) {
      return absl::NotFoundError(absl::StrCat("no key for node '", node, "' in the cluster allowlist (add it with "
                                              "`syctl keygen --cluster DIR --add ROLE ", node, "`)"));
    }
    *server = options_.curve.allowlist->Find(*key);
    return *key;
  }

  // Stamps `message` with its sender's allowlisted identity. False when a ROUTER message's
  // routing id is not the authenticated node's name (or "name@..."): it is dropped.
  bool StampIdentity(Message& message, const Endpoint& endpoint, bool is_router) {
    if (options_.curve.allowlist == nullptr) return true;
    std::optional<PeerIdentity> who = endpoint.server;
    if (is_router) {
      who = options_.curve.allowlist->Find(message.client_key);
      if (!who.has_value() || NodeOfPeer(message.address.peer) != who->name) return false;
    }
    if (!who.has_value()) return false;
    message.peer_role = who->role;
    message.peer_name = who->name;
    return true;
  }

  // Reads whole multipart messages while the receive queue has room. A message that does
  // not fit yet waits in stalled_ (and reading stops) until Receive makes room.
  void ReadAll(Endpoint& endpoint, bool is_router, const std::string& peer) {
    zmq::socket_t& socket = *endpoint.socket;
    while (DeliverStalled() && !inbound_.Full()) {
      std::vector<zmq::message_t> parts;
      zmq::message_t part;
      if (!socket.recv(part, zmq::recv_flags::dontwait)) return;
      parts.push_back(std::move(part));
      while (parts.back().more()) {
        zmq::message_t next;
        (void)socket.recv(next, zmq::recv_flags::none);  // the rest of a message is already here
        parts.push_back(std::move(next));
      }
      Message message;
      size_t first = 0;
      if (is_router) {
        message.address = {parts[0].to_string(), Route::kBound};
        first = 1;
      } else {
        message.address = {peer, Route::kConnected};
      }
      if (parts.size() <= first) continue;  // identity only: nothing to deliver
      if (is_router && zap_ != nullptr) {
        try {
          message.client_key = parts[first].gets("User-Id");
        } catch (const zmq::error_t&) {
          // no CURVE metadata on this message
        }
      }
      if (!StampIdentity(message, endpoint, is_router)) {
        ++dropped_unauthenticated_;
        continue;
      }
      message.header = Frame::FromZmq(std::move(parts[first]));
      for (size_t i = first + 1; i < parts.size(); ++i) message.data.push_back(Frame::FromZmq(std::move(parts[i])));
      if (!inbound_.FitsEver(message)) {
        ++dropped_oversize_;  // could never be queued
        continue;
      }
      stalled_ = std::move(message);
    }
  }

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
  SendBudget budget_;
  BoundedQueue<Message> inbound_;

  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::function<void()>> commands_ ABSL_GUARDED_BY(mu_);
  std::deque<Message> outbound_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> connected_peers_ ABSL_GUARDED_BY(mu_);

  // I/O thread only.
  std::unique_ptr<ZapHandler> zap_;  // with a CURVE server
  std::unique_ptr<SocketMonitor> monitor_;  // with options_.on_connection_lost, once a DEALER exists
  std::unique_ptr<ConnectionCap> cap_;      // with options_.max_connections, once bound
  std::optional<Message> stalled_;  // received, waiting for room in inbound_
  Endpoint router_;
  std::map<std::string, Endpoint> dealers_;

  std::atomic<uint64_t> sent_{0}, received_{0}, send_rejected_{0}, unroutable_{0}, dropped_oversize_{0};
  std::atomic<uint64_t> dropped_unauthenticated_{0};
  metrics::Counter* unroutable_counter_ = nullptr;
  metrics::Counter* rejected_counter_ = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ZmqTransport>> ZmqTransport::Create(ZmqOptions options) {
  if (options.node_id.empty()) return absl::InvalidArgumentError("ZmqOptions.node_id is required");
  const bool curve_client = !options.curve.server_public.empty() || options.curve.allowlist != nullptr;
  if (curve_client && (options.curve.client_public.size() != 40 || options.curve.client_secret.size() != 40 ||
                       (options.curve.allowlist == nullptr && options.curve.server_public.size() != 40))) {
    return absl::InvalidArgumentError("CURVE client keys must be 40-character Z85 strings");
  }
  for (const std::string& key : options.curve.allowed_clients) {
    if (key.size() != 40) return absl::InvalidArgumentError("allowed CURVE client keys must be 40-character Z85 strings");
  }
  if (!options.curve.server_secret.empty() && options.curve.server_secret.size() != 40) {
    return absl::InvalidArgumentError("CURVE server secret must be a 40-character Z85 string");
  }
  RaiseOpenFileLimitOnce();  // one descriptor per peer connection
  auto transport = std::make_unique<ZmqTransportImpl>(std::move(options));
  absl::Status started = transport->Start();
  if (!started.ok()) return started;
  return std::unique_ptr<ZmqTransport>(std::move(transport));
}

}  // namespace sy::transport
