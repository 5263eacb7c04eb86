// RpcNode implementation: pending-call table with retry timers, request dispatch
// with duplicate suppression, and error replies for malformed input.
#include "common/transport/rpc.h"

#include <algorithm>
#include <cstring>
#include <atomic>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/thread_name.h"
#include "common/status/wire_status.h"
#include "common/transport/peer_allowlist.h"
#include "common/transport/refusals.h"
#include "common/transport/reply_cache.h"
#include "common/transport/reply_waiter.h"

namespace sy::transport {

struct Responder::State {
  std::weak_ptr<RpcCore> core;
  ReplyCache::Key key;
  Address to;
  proto::MessageKind kind;
  std::atomic<bool> answered{false};
};

class RpcCore : public std::enable_shared_from_this<RpcCore> {
 public:
  RpcCore(std::unique_ptr<Transport> transport, RpcOptions options, RpcNode::Handler handler)
      : transport_(std::move(transport)),
        options_(std::move(options)),
        handler_(std::move(handler)),
        metrics_(options_.metrics != nullptr ? options_.metrics : &own_metrics_),
        cache_(options_.reply_cache_entries, options_.reply_cache_bytes),
        // Ids start from the clock so a restarted node does not reuse ids still cached by peers.
        next_id_(static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())) << 8),
        malformed_(Counter("sy_rpc_malformed_total", "Received messages that failed the door checks.")),
        retries_(Counter("sy_rpc_retries_total", "Requests sent again with the same id.")),
        duplicates_answered_(Counter("sy_rpc_duplicates_answered_total", "Duplicate requests answered from the reply cache.")),
        duplicates_in_progress_(Counter("sy_rpc_duplicates_in_progress_total", "Duplicate requests ignored while the first was in progress.")),
        unmatched_(Counter("sy_rpc_unmatched_replies_total", "Replies with no pending call (late or duplicate).")),
        wrong_peer_(Counter("sy_rpc_replies_from_wrong_peer_total",
                            "Replies ignored because they came from another peer than the request went to.")),
        send_failures_(Counter("sy_rpc_send_failures_total", "Replies or retries the transport refused.")),
        deadline_exceeded_(Counter("sy_rpc_deadline_exceeded_total", "Calls that ended with DeadlineExceeded.")),
        cached_replies_(metrics_->GetGauge("sy_rpc_cached_replies", "Replies kept for requests that may be retried.",
                                           {{"node", transport_->node_id()}})) {}

  // Received messages come straight from the transport's I/O thread when it offers that
  // (no hand-off); our own thread then only runs the timers. Otherwise it also receives.
  void Start() {
    if (transport_->DeliverOnIoThread([this](Message message) { OnMessage(std::move(message)); })) {
      thread_ = std::thread([this] {
        base::NameThisThread("sy-rpc-timers");
        TimerLoop();
      });
    } else {
      thread_ = std::thread([this] {
        base::NameThisThread("sy-rpc");
        Loop();
      });
    }
  }

  void Close() {
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      closed_ = true;
    }
    transport_->Close();
    if (thread_.joinable()) thread_.join();
    std::map<uint64_t, Pending> pending;
    {
      absl::MutexLock lock(&mu_);
      pending.swap(pending_);
    }
    for (auto& [id, call] : pending) call.done(absl::CancelledError("RpcNode closed"));
  }

  Transport& transport() { return *transport_; }
  metrics::Registry& metrics() { return *metrics_; }

  // Returns the call's request id (0 when it ended at once: closed, or the send failed).
  // `reply_here`: this thread reads the reply itself next (Call, Transport::ReceiveHere).
  uint64_t CallAsync(const Address& to, capnp::MessageBuilder& header, std::vector<Frame> data, absl::Time deadline,
                     RpcNode::Callback done, bool reply_here = false) {
    const absl::Time now = absl::Now();
    // The id is taken, the header stamped and encoded, and the call listed in one step, so
    // answeredBelow (the lowest id listed) never passes a call that has not gone out yet.
    Message message;
    uint64_t id;
    {
      absl::MutexLock lock(&mu_);
      if (closed_) {
        done(absl::CancelledError("RpcNode closed"));
        return 0;
      }
      id = next_id_++;
      auto envelope = header.getRoot<proto::Envelope>();
      envelope.setSender(transport_->node_id().c_str());
      envelope.setRequestId(id);
      envelope.setIsReply(false);
      envelope.setAttempt(0);
      envelope.setAnsweredBelow(pending_.empty() ? id : pending_.begin()->first);
      // Sent as a time to live, so the receiver's clock need not agree with ours; at least 1 ms
      // (0 means none): a call already past its deadline still fails here, not there.
      envelope.setTtlMs(deadline == absl::InfiniteFuture()
                            ? 0
                            : std::max<int64_t>(
                                  1, absl::ToInt64Milliseconds(absl::Ceil(deadline - now, absl::Milliseconds(1)))));
      message = Message{to, EncodeHeader(header), std::move(data)};
      const absl::Time next_attempt = now + options_.attempt_timeout;
      if (std::min(next_attempt, deadline) < timer_wake_) timer_wake_ = absl::InfinitePast();  // wakes TimerLoop
      // The frames are shared with the copy kept for retries.
      pending_[id] = Pending{message, deadline, next_attempt, options_.attempt_timeout, 1, std::move(done)};
    }
    // The first send waits for queue room until the call's deadline (backpressure).
    absl::Status sent = reply_here ? transport_->SendBeforeReceiveHere(std::move(message), deadline)
                                   : transport_->Send(std::move(message), deadline);
    if (!sent.ok()) {
      Finish(id, sent);
      return 0;
    }
    return id;
  }

  // CallAsync, waited for. Over a connection whose transport lets a waiting thread read it
  // (Transport::ReceiveHere), this thread reads the reply itself and handles it here; what
  // else it reads goes on to the I/O thread. Otherwise the I/O thread's callback wakes it.
  absl::StatusOr<DecodedMessage> Call(const Address& to, capnp::MessageBuilder& header, std::vector<Frame> data,
                                      absl::Time deadline) {
    auto waiter = std::make_shared<ReplyWaiter>();
    const bool reply_here = to.route == Route::kConnected && waiter->fd() >= 0;
    const uint64_t id = CallAsync(
        to, header, std::move(data), deadline,
        [waiter](absl::StatusOr<DecodedMessage> reply) { waiter->Set(std::move(reply)); }, reply_here);
    auto mine = [&](const Message& message) {
      const std::optional<HeaderIds> ids = PeekHeaderIds(message.header, options_.limits);
      return ids.has_value() && ids->is_reply && ids->request_id == id;
    };
    // At least one look, even when the call has ended already: the send left it to this
    // thread to notice what came in meanwhile (SendBeforeReceiveHere).
    bool here = id != 0 && reply_here;
    for (bool first = true; here && (first || !waiter->Done()); first = false) {
      std::optional<Message> reply;
      // Past the deadline the timers end the call (a little later): keep waiting for that.
      here = transport_->ReceiveHere(to.peer, waiter->fd(), std::max(deadline, absl::Now() + absl::Milliseconds(100)),
                                     mine, &reply);
      if (reply.has_value()) {
        OnMessage(*std::move(reply));  // the door checks, then OnReply
      } else {
        waiter->Drain();  // woken, or a slice of the wait passed: empty it for the next wait
      }
    }
    return waiter->Wait();
  }

  void HandleResponder(Responder::State& state, capnp::MessageBuilder* header, std::vector<Frame> data,
                       const absl::Status& failure) {
    capnp::MallocMessageBuilder error_builder;
    if (header == nullptr) {
      header = &error_builder;
      auto envelope = error_builder.initRoot<proto::Envelope>();
      envelope.setKind(state.kind);
      auto status = envelope.initStatus();
      StatusToWire(failure, status);
      uint64_t epoch = 0;
      auto payload = failure.GetPayload(kCurrentEpochPayload);
      if (payload.has_value() && absl::SimpleAtoi(std::string(*payload), &epoch)) status.setCurrentEpoch(epoch);
    }
    auto envelope = header->getRoot<proto::Envelope>();
    envelope.setSender(transport_->node_id().c_str());
    envelope.setRequestId(state.key.second);
    envelope.setIsReply(true);
    if (envelope.getKind() == proto::MessageKind::INVALID) envelope.setKind(state.kind);
    Message reply{state.to, EncodeHeader(*header), std::move(data)};
    cached_replies_.Set(static_cast<double>(cache_.Complete(state.key, reply)));
    SendReply(std::move(reply));
  }

 private:
  struct Pending {
    Message message;          // exactly what went out first; retries re-send it with attempt+1
    absl::Time deadline;
    absl::Time next_attempt;
    absl::Duration timeout;   // current attempt timeout
    int attempts;
    RpcNode::Callback done;
  };

  metrics::Counter& Counter(const char* name, const char* help) {
    return metrics_->GetCounter(name, help, {{"node", transport_->node_id()}});
  }

  void Finish(uint64_t id, absl::StatusOr<DecodedMessage> result) {
    RpcNode::Callback done;
    {
      absl::MutexLock lock(&mu_);
      auto it = pending_.find(id);
      if (it == pending_.end()) return;
      done = std::move(it->second.done);
      pending_.erase(it);
    }
    done(std::move(result));
  }

  void Loop() {
    while (true) {
      absl::Time wake = absl::Now() + absl::Milliseconds(100);
      {
        absl::MutexLock lock(&mu_);
        for (const auto& [id, call] : pending_) wake = std::min({wake, call.next_attempt, call.deadline});
      }
      absl::StatusOr<Message> received = transport_->Receive(wake);
      if (received.ok()) {
        OnMessage(*std::move(received));
      } else if (absl::IsCancelled(received.status())) {
        return;  // transport closed
      }
      RunTimers();
    }
  }

  // Sleeps until the earliest retry or deadline (at most 100 ms; sooner when CallAsync adds
  // an earlier one) and runs the timers, until closed.
  void TimerLoop() {
    mu_.Lock();
    while (!closed_) {
      timer_wake_ = absl::Now() + absl::Milliseconds(100);
      for (const auto& [id, call] : pending_) timer_wake_ = std::min({timer_wake_, call.next_attempt, call.deadline});
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return closed_ || timer_wake_ == absl::InfinitePast();
      };
      mu_.AwaitWithDeadline(absl::Condition(&woken), timer_wake_);
      mu_.Unlock();
      RunTimers();
      mu_.Lock();
    }
    mu_.Unlock();
  }

  void RunTimers() {
    const absl::Time now = absl::Now();
    std::vector<uint64_t> expired;
    std::vector<Message> resend;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [id, call] : pending_) {
        if (now >= call.deadline) {
          expired.push_back(id);
        } else if (now >= call.next_attempt && call.attempts < options_.max_attempts && call.message.header.size() > 0) {
          call.timeout = std::min(call.timeout * options_.backoff_multiplier, options_.max_attempt_timeout);
          call.next_attempt = now + call.timeout;
          resend.push_back(WithAttempt(call.message, call.attempts, pending_.begin()->first));
          ++call.attempts;
        } else if (now >= call.next_attempt) {
          call.next_attempt = call.deadline;  // out of attempts: wait for a late reply
        }
      }
    }
    for (uint64_t id : expired) {
      deadline_exceeded_.Increment();
      Finish(id, absl::DeadlineExceededError("no reply before the deadline"));
    }
    for (Message& message : resend) {
      retries_.Increment();
      if (!transport_->Send(std::move(message), now).ok()) send_failures_.Increment();
    }
  }

  // The same request (same id) stamped with its attempt number and the lowest id still
  // waiting; the data frames are shared.
  static Message WithAttempt(const Message& original, int attempt, uint64_t answered_below) {
    auto words = kj::heapArray<capnp::word>(original.header.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), original.header.data(), original.header.size());
    capnp::FlatArrayMessageReader reader(words);
    capnp::MallocMessageBuilder builder;
    builder.setRoot(reader.getRoot<proto::Envelope>());
    builder.getRoot<proto::Envelope>().setAttempt(static_cast<uint32_t>(attempt));
    builder.getRoot<proto::Envelope>().setAnsweredBelow(answered_below);
    return Message{original.address, EncodeHeader(builder), original.data};
  }

  void OnMessage(Message message) {
    Address from = message.address;  // the Responder takes it at the end
    const Frame header = message.header;  // shared, not copied: to answer a refused request by its id
    const size_t bytes = message.ByteSize();
    absl::StatusOr<DecodedMessage> decoded = DecodedMessage::Decode(std::move(message), options_.limits);
    if (!decoded.ok()) {
      malformed_.Increment();
      if (header.size() > options_.limits.max_header_bytes || bytes > options_.limits.max_message_bytes) {
        (void)Refuse(metrics_, "oversized",
                     absl::ResourceExhaustedError(absl::StrCat("a message of ", bytes, " bytes from ", from.peer,
                                                               ": ", decoded.status().message())));
      }
      FailCallIfReplyTooLarge(from, header, bytes, decoded.status());
      ReplyMalformed(from, PeekRequestId(header, options_.limits), decoded.status());
      return;
    }
    auto envelope = decoded->envelope();
    if (envelope.getIsReply()) {
      OnReply(*std::move(decoded));
      return;
    }
    // Keyed by the node of the peer the request came from (over CURVE its routing id names
    // the authenticated node), not by the sender the body names: no peer can take or poison
    // another's cached replies. The node, not the connection: a retry that went out on a
    // fresh connection (fresh routing id) still finds the first attempt's reply.
    const std::string sender = NodeOfPeer(from.peer);
    if (envelope.getAnsweredBelow() != 0) {
      cached_replies_.Set(static_cast<double>(cache_.ForgetBelow(sender, envelope.getAnsweredBelow())));
    }
    ReplyCache::Key key{sender, envelope.getRequestId()};
    Message cached;
    switch (cache_.Begin(key, &cached)) {
      case ReplyCache::State::kDone:
        duplicates_answered_.Increment();
        cached.address = from;
        SendReply(std::move(cached));
        return;
      case ReplyCache::State::kInProgress:
        duplicates_in_progress_.Increment();
        return;
      case ReplyCache::State::kNew:
        break;
    }
    Responder responder;
    responder.state_ = std::make_shared<Responder::State>();
    responder.state_->core = weak_from_this();
    responder.state_->key = std::move(key);
    responder.state_->to = std::move(from);
    responder.state_->kind = envelope.getKind();
    if (handler_ == nullptr) {
      responder.Fail(absl::UnimplementedError("this node serves no requests"));
      return;
    }
    handler_(*std::move(decoded), responder);
  }

  // A reply counts only when it comes from the peer its request went to.
  void OnReply(DecodedMessage reply) {
    auto envelope = reply.envelope();
    const uint64_t id = envelope.getRequestId();
    {
      absl::MutexLock lock(&mu_);
      auto it = pending_.find(id);
      if (it == pending_.end()) {
        unmatched_.Increment();
        return;
      }
      if (!(it->second.message.address == reply.message().address)) {
        wrong_peer_.Increment();
        return;
      }
    }
    auto status = envelope.getStatus();
    if (status.getCode() != proto::ErrorCode::OK) {
      absl::Status error = StatusFromWire(status.getCode(), status.getMessage().cStr());
      if (status.getCurrentEpoch() != 0) {
        error.SetPayload(kCurrentEpochPayload, absl::Cord(absl::StrCat(status.getCurrentEpoch())));
      }
      Finish(id, error);
      return;
    }
    Finish(id, std::move(reply));
  }

  // A reply over our size limits ends its pending call at once with ResourceExhausted: a
  // retry would only bring the same reply (from the peer's reply cache) until the deadline.
  void FailCallIfReplyTooLarge(const Address& from, const Frame& header, size_t bytes, const absl::Status& refusal) {
    if (header.size() <= options_.limits.max_header_bytes && bytes <= options_.limits.max_message_bytes) return;
    const std::optional<HeaderIds> ids = PeekHeaderIds(header, options_.limits);
    if (!ids || !ids->is_reply) return;
    {
      absl::MutexLock lock(&mu_);
      auto it = pending_.find(ids->request_id);
      if (it == pending_.end() || !(it->second.message.address == from)) return;
    }
    Finish(ids->request_id, absl::ResourceExhaustedError(absl::StrCat("reply too large: ", refusal.message())));
  }

  // `request_id` 0: the refused message did not read as a request (nothing to match).
  void ReplyMalformed(const Address& to, uint64_t request_id, const absl::Status& error) {
    capnp::MallocMessageBuilder builder;
    auto envelope = builder.initRoot<proto::Envelope>();
    envelope.setSender(transport_->node_id().c_str());
    envelope.setRequestId(request_id);
    envelope.setIsReply(true);
    StatusToWire(error, envelope.initStatus());
    SendReply(Message{to, EncodeHeader(builder), {}});
  }

  void SendReply(Message reply) {
    if (!transport_->Send(std::move(reply), absl::Now() + options_.reply_send_timeout).ok()) {
      send_failures_.Increment();  // the caller retries and gets the reply from the cache
    }
  }

  std::unique_ptr<Transport> transport_;
  const RpcOptions options_;
  const RpcNode::Handler handler_;
  metrics::Registry own_metrics_;
  metrics::Registry* const metrics_;
  ReplyCache cache_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_);
  metrics::Counter& malformed_;
  metrics::Counter& retries_;
  metrics::Counter& duplicates_answered_;
  metrics::Counter& duplicates_in_progress_;
  metrics::Counter& unmatched_;
  metrics::Counter& wrong_peer_;
  metrics::Counter& send_failures_;
  metrics::Counter& deadline_exceeded_;
  metrics::Gauge& cached_replies_;

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  absl::Time timer_wake_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();  // when TimerLoop runs the timers next
  std::thread thread_;
};

void Responder::Reply(capnp::MessageBuilder& header, std::vector<Frame> data) {
  if (state_ == nullptr || state_->answered.exchange(true)) return;
  if (auto core = state_->core.lock()) core->HandleResponder(*state_, &header, std::move(data), absl::OkStatus());
}

void Responder::Fail(const absl::Status& status) {
  if (state_ == nullptr || state_->answered.exchange(true)) return;
  const absl::Status error = status.ok() ? absl::InternalError("Fail called with OK") : status;
  if (auto core = state_->core.lock()) core->HandleResponder(*state_, nullptr, {}, error);
}

RpcNode::RpcNode(std::shared_ptr<RpcCore> core) : core_(std::move(core)) {}
RpcNode::~RpcNode() { Close(); }

absl::StatusOr<std::unique_ptr<RpcNode>> RpcNode::Create(std::unique_ptr<Transport> transport, RpcOptions options,
                                                         Handler handler) {
  if (transport == nullptr) return absl::InvalidArgumentError("transport is required");
  if (options.max_attempts < 1) return absl::InvalidArgumentError("max_attempts must be >= 1");
  auto core = std::make_shared<RpcCore>(std::move(transport), std::move(options), std::move(handler));
  core->Start();
  return std::unique_ptr<RpcNode>(new RpcNode(std::move(core)));
}

Transport& RpcNode::transport() { return core_->transport(); }
metrics::Registry& RpcNode::metrics() { return core_->metrics(); }

void RpcNode::CallAsync(const Address& to, capnp::MessageBuilder& header, std::vector<Frame> data,
                        absl::Time deadline, Callback done) {
  core_->CallAsync(to, header, std::move(data), deadline, std::move(done));
}

absl::StatusOr<DecodedMessage> RpcNode::Call(const Address& to, capnp::MessageBuilder& header,
                                             std::vector<Frame> data, absl::Time deadline) {
  return core_->Call(to, header, std::move(data), deadline);
}

void RpcNode::Close() { core_->Close(); }

}  // namespace sy::transport
