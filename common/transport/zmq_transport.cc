// ZmqTransport implementation, the side any thread calls (see zmq_transport_impl.h): sends
// written from the calling thread when the socket lock is free, connection changes run
// on the I/O thread, and a waiting caller reading its own connection (ReceiveHere).
#include "common/transport/zmq_transport_impl.h"

#include <poll.h>

#include <algorithm>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/thread_name.h"
#include "common/transport/fd_limit.h"

namespace sy::transport {

ZmqTransportImpl::ZmqTransportImpl(ZmqOptions options)
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

absl::Status ZmqTransportImpl::Start() {
  if (absl::Status opened = wake_.Open(); !opened.ok()) return opened;
  if (absl::Status opened = poll_.Open(); !opened.ok()) return opened;
  io_thread_ = std::thread([this] {
    base::NameThisThread("sy-io");
    IoLoop();
  });
  return absl::OkStatus();
}

absl::StatusOr<std::string> ZmqTransportImpl::Bind(const std::string& endpoint) {
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

absl::Status ZmqTransportImpl::Connect(const std::string& peer, const std::string& endpoint) {
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

absl::Status ZmqTransportImpl::Disconnect(const std::string& peer) {
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

absl::Status ZmqTransportImpl::SendFrom(Message message, absl::Time deadline, bool reader_follows) {
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
  if (SendNow(message, reader_follows)) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    outbound_.push_back(std::move(message));
  }
  wake_.Wake();
  return absl::OkStatus();
}

absl::StatusOr<Message> ZmqTransportImpl::Receive(absl::Time deadline) {
  const bool was_full = inbound_.Full();
  absl::StatusOr<Message> message = inbound_.Pop(deadline);
  if (was_full) wake_.Wake();  // the I/O thread stopped reading while full
  return message;
}

bool ZmqTransportImpl::DeliverOnIoThread(std::function<void(Message)> deliver) {
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

bool ZmqTransportImpl::ReceiveHere(const std::string& peer, int wake_fd, absl::Time deadline,
                                   const std::function<bool(const Message&)>& mine, std::optional<Message>* taken) {
  if (OnIoThread()) return false;  // the loop would wait on itself
  // While any thread waits here on a socket, the I/O thread's wait leaves the socket's
  // descriptor out (Pause): one thread, not two, wakes for the reply.
  const zmq::socket_t* watched = nullptr;
  auto stop_watching = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_) {
    auto it = dealers_.find(peer);
    if (watched == nullptr || it == dealers_.end() || it->second.socket.get() != watched) return;
    if (--it->second.readers == 0) poll_.Resume(it->second.fd);
  };
  while (true) {
    int fd = -1;
    bool wake = false, finished = false;
    {
      absl::MutexLock io(&io_mu_);
      if (deliver_ == nullptr) return false;
      auto it = dealers_.find(peer);
      if (it != dealers_.end()) {
        Endpoint& endpoint = it->second;
        fd = endpoint.fd;
        if (watched != endpoint.socket.get()) {  // first look, or the peer was connected again
          stop_watching();
          watched = endpoint.socket.get();
          if (endpoint.readers++ == 0) poll_.Pause(fd);
        }
        // Until the socket would block (which re-arms its ZMQ_FD) or a batch is read; then
        // the I/O thread is woken for the rest.
        Message message;
        int read = 0;
        for (; read < kDeliveryBatch && ReadAdmitted(endpoint, /*is_router=*/false, peer, &message); ++read) {
          if (!taken->has_value() && mine(message)) {
            *taken = std::move(message);
          } else {
            handed_over_.push_back(std::move(message));
          }
          message = Message();
        }
        wake = !handed_over_.empty() || read == kDeliveryBatch;
      }
      finished = taken->has_value() || absl::Now() >= deadline;
      if (finished) stop_watching();
    }
    if (wake) wake_.Wake();
    if (taken->has_value()) {
      ++received_;
      ++received_here_;
    }
    if (finished) return true;
    pollfd fds[2] = {{wake_fd, POLLIN, 0}, {fd, POLLIN, 0}};  // a negative fd is skipped
    const int64_t wait_ms = absl::ToInt64Milliseconds(absl::Ceil(deadline - absl::Now(), absl::Milliseconds(1)));
    if (poll(fds, 2, static_cast<int>(std::clamp<int64_t>(wait_ms, 0, 100))) > 0 && fds[0].revents != 0) {
      absl::MutexLock io(&io_mu_);
      stop_watching();
      return true;
    }
  }
}

void ZmqTransportImpl::Close() {
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

TransportStats ZmqTransportImpl::stats() const {
  TransportStats s;
  s.sent = sent_.load();
  s.received = received_.load();
  s.send_rejected = send_rejected_.load();
  s.unroutable = unroutable_.load();
  s.received_here = received_here_.load();
  s.dropped_oversize = dropped_oversize_.load();
  s.dropped_unauthenticated = dropped_unauthenticated_.load();
  s.max_outbound_depth = budget_.max_count();
  s.max_inbound_depth = inbound_.max_depth();
  absl::MutexLock lock(&mu_);
  s.connected_peers = connected_peers_.size();
  return s;
}

void ZmqTransportImpl::CountRejected() {
  ++send_rejected_;
  if (rejected_counter_ != nullptr) rejected_counter_->Increment();
}

absl::Status ZmqTransportImpl::RunOnIoThread(std::function<void()> fn) {
  const bool here = OnIoThread();
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return absl::FailedPreconditionError("transport closed");
    if (!here) {
      commands_.push_back([this, &fn, &done] {
        fn();
        poll_.Renew();  // sockets may have been made or closed
        done.set_value();
      });
    }
  }
  if (here) {
    absl::MutexLock io(&io_mu_);
    fn();
    poll_.Renew();
    wake_.Wake();  // the loop polls the sockets it armed: a new one must be armed first
    return absl::OkStatus();
  }
  wake_.Wake();
  finished.wait();
  return absl::OkStatus();
}

bool ZmqTransportImpl::SendNow(Message& message, bool reader_follows) {
  if (!io_mu_.TryLock()) return false;
  bool done = false, wake = false;
  Endpoint* endpoint = EndpointFor(message.address);
  if (endpoint != nullptr && NothingOutbound()) {  // older messages for it go first (Flush)
    done = true;
    const bool is_router = message.address.route == Route::kBound;
    // The usual case, an empty queue, sends without a stop in it.
    if (!endpoint->pending.empty() || SendOne(*endpoint, message, is_router) == SendOutcome::kWouldBlock) {
      endpoint->pending.push_back(std::move(message));
      wake = !Flush(*endpoint, is_router);  // blocked: the I/O thread retries
    }
    // Sending may have consumed the I/O thread's ZMQ_FD signal of input that came meanwhile:
    // the I/O thread looks at the socket before it waits; another thread checks it now,
    // unless it reads the connection next itself (ReceiveHere, which needs a receiver).
    if (OnIoThread()) {
      poll_.MarkFired(endpoint->fd);
    } else if (!reader_follows || is_router || deliver_ == nullptr) {
      wake = wake || Readable(*endpoint->socket);
    }
  }
  io_mu_.Unlock();
  if (wake) wake_.Wake();
  return done;
}

bool ZmqTransportImpl::NothingOutbound() {
  absl::MutexLock lock(&mu_);
  return outbound_.empty();
}

Endpoint* ZmqTransportImpl::EndpointFor(const Address& address) {
  if (address.route == Route::kBound) return router_.socket != nullptr ? &router_ : nullptr;
  auto it = dealers_.find(address.peer);
  return it != dealers_.end() ? &it->second : nullptr;
}

absl::Status ZmqTransportImpl::AcquireOnIoThread(size_t bytes, absl::Time deadline) {
  while (true) {
    absl::Status admitted = budget_.Acquire(bytes, std::min(deadline, absl::Now() + absl::Milliseconds(1)));
    if (!absl::IsResourceExhausted(admitted) || absl::Now() >= deadline) return admitted;
    absl::MutexLock io(&io_mu_);
    TakeOutbound();
    FlushAll();
    wake_.Wake();  // the loop must look at the sockets sent on
  }
}

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
