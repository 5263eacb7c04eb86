// Actor<Msg>: private state, a mailbox, and messages handled one at a time on
// the actor's strand, so the state needs no locks. `Msg` is a std::variant of
// every message the actor accepts: its whole interface in one list.
//
// A subclass keeps its state as members, names each phase of its life with
// Become("phase", handler), and inside handlers may Reply, take a Responder to
// reply later, Stash a message that came too early and UnstashAll it when the
// phase changes, set timers with After, and Await another actor's reply.
//
// Fault containment: a handler (or timer callback, or Await continuation) that
// throws is caught; the error is logged with the actor's name and the pending
// Ask fails with Internal carrying the exception text; the actor goes on with
// the next message. With a Registry attached, the actor also reports
// sy_actor_handler_failures_total, sy_actor_messages_total and
// sy_actor_mailbox_depth, labelled {actor=name}: give actors names unique
// within a registry.
//
// Create actors with std::make_shared (tasks keep the actor alive until they
// ran). Messages sent once the executor is shut down are dropped (asks fail
// with Unavailable). Thread-safe: Tell, Ask, AskUntil, mailbox_size and
// stash_size may be called from any thread; the protected helpers only from
// the actor's own handlers.
//
//   struct Add { int a, b; };  using CalcMsg = std::variant<Add>;
//   class Calc : public sy::actor::Actor<CalcMsg> { ... Become("ready", [this](CalcMsg& m) {
//     Reply(std::get<Add>(m).a + std::get<Add>(m).b); }); };
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/actor/ask.h"
#include "common/actor/executor.h"
#include "common/metrics/registry.h"

namespace sy::actor {
namespace internal {

// Logs, counts and describes an exception caught from actor code; returns the
// Internal status the pending request fails with.
absl::Status ReportHandlerFailure(const std::string& actor_name, const std::string& behavior,
                                  std::exception_ptr error, metrics::Counter* failures);
metrics::Counter* HandlerFailureCounter(metrics::Registry* registry, const std::string& actor);
metrics::Counter* MessageCounter(metrics::Registry* registry, const std::string& actor);
metrics::Gauge* MailboxDepthGauge(metrics::Registry* registry, const std::string& actor);
absl::Status NoReplyError(const std::string& actor_name, const std::string& behavior);

}  // namespace internal

template <class Msg>
class Actor : public std::enable_shared_from_this<Actor<Msg>> {
 public:
  using Behavior = std::function<void(Msg&)>;

  // `registry` (optional) must outlive the actor.
  Actor(Executor& executor, std::string name, metrics::Registry* registry = nullptr)
      : executor_(executor),
        name_(std::move(name)),
        strand_(executor.NewStrand()),
        failures_(internal::HandlerFailureCounter(registry, name_)),
        processed_(internal::MessageCounter(registry, name_)),
        mailbox_depth_(internal::MailboxDepthGauge(registry, name_)) {}
  virtual ~Actor() = default;
  Actor(const Actor&) = delete;
  Actor& operator=(const Actor&) = delete;

  // Fire and forget. Messages from one sending thread are handled in send order.
  void Tell(Msg msg) { Enqueue(Envelope{std::move(msg), nullptr}); }

  // Sends `msg` and returns a handle on the reply, which fails with
  // DeadlineExceeded when no reply came within `timeout` (a later reply is
  // dropped), Internal when the handler threw or returned without replying,
  // Unavailable when the actor stopped first.
  //
  //   auto sum = calc->Ask<int>(Add{2, 3}, std::chrono::seconds(1));
  //   absl::StatusOr<int> five = sum.Wait();   // or sum.Then([](absl::StatusOr<int> r) {...});
  template <class ReplyT>
  AskFuture<ReplyT> Ask(Msg msg, Duration timeout) {
    return AskUntil<ReplyT>(std::move(msg), executor_.Now() + timeout);
  }
  // Same with an absolute deadline on the executor's clock (e.g. a request's own
  // deadline). A deadline already passed fails at once; the message is not sent.
  template <class ReplyT>
  AskFuture<ReplyT> AskUntil(Msg msg, TimePoint deadline) {
    auto state = std::make_shared<internal::AskState<ReplyT>>();
    if (deadline <= executor_.Now()) {
      state->Complete(absl::DeadlineExceededError("ask to actor '" + name_ +
                                                  "' made after its deadline; not sent"));
      return AskFuture<ReplyT>(state);
    }
    const TimerId deadline_timer = executor_.ScheduleAt(
        deadline, [weak = std::weak_ptr<internal::AskState<ReplyT>>(state), name = name_] {
          if (auto pending = weak.lock()) {
            pending->Complete(
                absl::DeadlineExceededError("ask to actor '" + name + "' passed its deadline"));
          }
        });
    // A reply in time frees the timer (the executor outlives its actors and their requests).
    state->OnComplete([executor = &executor_, deadline_timer] { executor->Cancel(deadline_timer); });
    Enqueue(Envelope{std::move(msg), std::make_unique<internal::ReplyToken>(state, name_)});
    return AskFuture<ReplyT>(state);
  }

  const std::string& name() const { return name_; }
  size_t mailbox_size() const {
    absl::MutexLock lock(&mailbox_mu_);
    return mailbox_.size();
  }
  size_t stash_size() const { return stash_count_.load(); }

 protected:
  // Handles every following message with `behavior`, starting with the next one.
  void Become(std::string behavior_name, Behavior behavior) {
    behavior_name_ = std::move(behavior_name);
    behavior_ = std::move(behavior);
  }
  const std::string& behavior_name() const { return behavior_name_; }

  // Answers the message being handled (ignored for a Tell, or once answered).
  template <class T>
  void Reply(T value) {
    if (current_ != nullptr && current_->token) {
      current_->token->Deliver(internal::ErasedValue::Of(std::move(value)));
    }
  }
  void ReplyError(absl::Status status) {
    if (current_ != nullptr && current_->token) current_->token->DeliverError(std::move(status));
  }
  // Takes the reply obligation of the message being handled, to answer later.
  Responder TakeResponder() {
    if (current_ == nullptr) return Responder();
    return Responder(std::move(current_->token));
  }

  // Keeps the message being handled (and its pending reply) for later.
  void Stash() { stash_current_ = true; }
  // Puts every stashed message back at the front of the mailbox, in arrival
  // order, ahead of messages that arrived since; they are handled next.
  void UnstashAll() { unstash_requested_ = true; }

  // Runs `callback` on this actor's strand after `delay`, unless cancelled.
  TimerId After(Duration delay, std::function<void()> callback) {
    // The id is known only once scheduled; the strand task reads it after this
    // handler returned, so it is filled in by then.
    auto id_slot = std::make_shared<TimerId>(0);
    const TimerId id = executor_.ScheduleAt(
        executor_.Now() + delay,
        [weak = this->weak_from_this(), id_slot, callback = std::move(callback)]() mutable {
          auto self = weak.lock();
          if (!self) return;
          self->strand_->Post([self, id_slot, callback = std::move(callback)] {
            if (self->active_timers_.erase(*id_slot) == 0) return;  // cancelled meanwhile
            self->RunGuarded([&] { callback(); }, nullptr);
            self->EndTurn(/*in_drain=*/false);
          });
        });
    *id_slot = id;
    active_timers_.insert(id);
    return id;
  }
  // True when the timer had not fired; after this it never will.
  bool CancelTimer(TimerId id) {
    if (active_timers_.erase(id) == 0) return false;
    executor_.Cancel(id);
    return true;
  }

  // Runs `continuation` on this actor's strand once `future` completes.
  template <class ReplyT>
  void Await(AskFuture<ReplyT> future, std::function<void(absl::StatusOr<ReplyT>)> continuation) {
    future.Then([weak = this->weak_from_this(),
                 continuation = std::move(continuation)](absl::StatusOr<ReplyT> result) mutable {
      auto self = weak.lock();
      if (!self) return;
      auto shared_result = std::make_shared<absl::StatusOr<ReplyT>>(std::move(result));
      self->strand_->Post([self, shared_result, continuation = std::move(continuation)] {
        self->RunGuarded([&] { continuation(std::move(*shared_result)); }, nullptr);
        self->EndTurn(/*in_drain=*/false);
      });
    });
  }

  Executor& executor() { return executor_; }
  TimePoint Now() const { return executor_.Now(); }

 private:
  struct Envelope {
    Msg msg;
    std::unique_ptr<internal::ReplyToken> token;  // null for Tell
  };

  void Enqueue(Envelope envelope) {
    // Dropped (an Ask then fails with Unavailable) once the executor is down.
    if (executor_.IsShutDown()) return;
    bool schedule = false;
    {
      absl::MutexLock lock(&mailbox_mu_);
      mailbox_.push_back(std::move(envelope));
      SetDepthGauge();
      schedule = !scheduled_;
      scheduled_ = true;
    }
    if (schedule) ScheduleDrain();
  }

  void SetDepthGauge() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mailbox_mu_) {
    if (mailbox_depth_ != nullptr) mailbox_depth_->Set(static_cast<double>(mailbox_.size()));
  }

  void ScheduleDrain() {
    auto self = this->shared_from_this();
    strand_->Post([self] { self->HandleOne(); });
  }

  // Runs on the strand: one message, then reschedules itself if more wait.
  void HandleOne() {
    std::optional<Envelope> envelope;
    {
      absl::MutexLock lock(&mailbox_mu_);
      if (!mailbox_.empty()) {
        envelope.emplace(std::move(mailbox_.front()));
        mailbox_.pop_front();
        SetDepthGauge();
      }
    }
    if (envelope.has_value()) Dispatch(*envelope);
    EndTurn(/*in_drain=*/true);
  }

  // Ends every strand task: applies UnstashAll and makes sure a HandleOne is
  // posted while messages wait. `in_drain`: called from HandleOne, which owns
  // the `scheduled_` flag.
  void EndTurn(bool in_drain) {
    bool post;
    {
      absl::MutexLock lock(&mailbox_mu_);
      if (unstash_requested_) {
        for (auto it = stash_.rbegin(); it != stash_.rend(); ++it) {
          mailbox_.push_front(std::move(*it));
        }
        stash_.clear();
        stash_count_.store(0);
        unstash_requested_ = false;
        SetDepthGauge();
      }
      if (in_drain) {
        scheduled_ = !mailbox_.empty();
        post = scheduled_;
      } else {
        post = !scheduled_ && !mailbox_.empty();
        if (post) scheduled_ = true;
      }
    }
    if (post) ScheduleDrain();
  }

  void Dispatch(Envelope& envelope) {
    current_ = &envelope;
    stash_current_ = false;
    const std::string behavior_at_entry = behavior_name_;
    bool ok = false;
    if (behavior_) {
      ok = RunGuarded([&] { behavior_(envelope.msg); }, envelope.token.get());
    } else {
      ReplyError(absl::InternalError("actor '" + name_ + "' has no behavior yet"));
    }
    current_ = nullptr;
    if (processed_ != nullptr) processed_->Increment();
    if (ok && stash_current_) {
      stash_.push_back(std::move(envelope));
      stash_count_.store(stash_.size());
    } else if (envelope.token && !envelope.token->delivered()) {
      envelope.token->DeliverError(internal::NoReplyError(name_, behavior_at_entry));
    }
  }

  // Runs actor code; false when it threw (then `token`, if any, carries the error).
  template <class F>
  bool RunGuarded(F&& body, internal::ReplyToken* token) {
    try {
      body();
      return true;
    } catch (...) {
      absl::Status error = internal::ReportHandlerFailure(name_, behavior_name_,
                                                          std::current_exception(), failures_);
      if (token != nullptr) token->DeliverError(std::move(error));
      return false;
    }
  }

  Executor& executor_;
  const std::string name_;
  const std::shared_ptr<Strand> strand_;
  metrics::Counter* const failures_;   // null without a registry
  metrics::Counter* const processed_;  // null without a registry
  metrics::Gauge* const mailbox_depth_;  // null without a registry

  // Shared with senders.
  mutable absl::Mutex mailbox_mu_;
  std::deque<Envelope> mailbox_ ABSL_GUARDED_BY(mailbox_mu_);
  bool scheduled_ ABSL_GUARDED_BY(mailbox_mu_) = false;  // a HandleOne is posted or running
  std::atomic<size_t> stash_count_{0};

  // Strand-only state: no locks.
  std::string behavior_name_;
  Behavior behavior_;
  Envelope* current_ = nullptr;
  bool stash_current_ = false;
  bool unstash_requested_ = false;
  std::deque<Envelope> stash_;
  absl::flat_hash_set<TimerId> active_timers_;
};

}  // namespace sy::actor
