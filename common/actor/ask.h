// Request/reply plumbing for Actor::Ask: the asker holds an AskFuture<Reply>,
// the actor answers through the request's reply token (directly with
// Actor::Reply, or later through a Responder it took). The first completion
// wins: a reply after the deadline, or a second reply, is dropped safely.
//
// Thread-safe: a future may be waited on from one thread while any other
// thread completes it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <typeinfo>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace sy::actor {
namespace internal {

// A reply with its type erased (unlike std::any, move-only types are fine).
struct ErasedValue {
  template <class T>
  static ErasedValue Of(T value) {
    return {&typeid(T), std::make_shared<T>(std::move(value))};
  }
  const std::type_info* type;
  std::shared_ptr<void> value;
};

// The asker's side of one request, with the reply type erased.
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  // Completes with `value`; a value of the wrong type completes with Internal.
  virtual void Deliver(ErasedValue value) = 0;
  virtual void DeliverError(absl::Status status) = 0;
};

// Rides with a request through the mailbox (and the stash). If it is destroyed
// before anything was delivered, the asker gets Unavailable ("actor stopped").
class ReplyToken {
 public:
  ReplyToken(std::shared_ptr<ReplySink> sink, std::string actor_name)
      : sink_(std::move(sink)), actor_name_(std::move(actor_name)) {}
  ~ReplyToken();
  ReplyToken(const ReplyToken&) = delete;
  ReplyToken& operator=(const ReplyToken&) = delete;

  void Deliver(ErasedValue value);
  void DeliverError(absl::Status status);
  bool delivered() const { return delivered_; }

 private:
  std::shared_ptr<ReplySink> sink_;
  std::string actor_name_;
  bool delivered_ = false;
};

template <class Reply>
class AskState final : public ReplySink {
 public:
  using Result = absl::StatusOr<Reply>;
  using Callback = std::function<void(Result)>;

  void Deliver(ErasedValue value) override {
    if (*value.type == typeid(Reply)) {
      Complete(Result(std::move(*static_cast<Reply*>(value.value.get()))));
    } else {
      Complete(absl::InternalError(std::string("actor replied with type ") + value.type->name() +
                                   ", the asker expected " + typeid(Reply).name()));
    }
  }
  void DeliverError(absl::Status status) override {
    if (status.ok()) status = absl::InternalError("actor replied with an OK status and no value");
    Complete(Result(std::move(status)));
  }

  // First completion wins; returns false when already completed.
  bool Complete(Result result) {
    Callback callback;
    std::function<void()> on_complete;
    {
      absl::MutexLock lock(&mu_);
      if (done_) return false;
      done_ = true;
      on_complete = std::move(on_complete_);
      if (callback_) {
        callback = std::move(callback_);
      } else {
        result_.emplace(std::move(result));
      }
    }
    if (on_complete) on_complete();
    if (callback) callback(std::move(result));
    return true;
  }

  // Runs `hook` once on completion (now, if already complete); used to cancel
  // the deadline timer when the reply comes first.
  void OnComplete(std::function<void()> hook) {
    {
      absl::MutexLock lock(&mu_);
      if (!done_) {
        on_complete_ = std::move(hook);
        return;
      }
    }
    hook();
  }

  bool ready() const {
    absl::MutexLock lock(&mu_);
    return done_;
  }

  Result Take() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    if (!result_.has_value()) {
      return absl::FailedPreconditionError("ask result already taken (Wait or Then called before)");
    }
    Result result = std::move(*result_);
    result_.reset();
    return result;
  }

  void SetCallback(Callback callback) {
    std::optional<Result> ready_result;
    {
      absl::MutexLock lock(&mu_);
      if (!done_) {
        callback_ = std::move(callback);
        return;
      }
      if (!result_.has_value()) return;  // already taken
      ready_result = std::move(result_);
      result_.reset();
    }
    callback(std::move(*ready_result));
  }

 private:
  mutable absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<Result> result_ ABSL_GUARDED_BY(mu_);
  Callback callback_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_complete_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

// The asker's handle on one request. Copyable (copies share the request).
// The result is taken once: by Wait() or by the callback given to Then().
template <class Reply>
class AskFuture {
 public:
  using Result = absl::StatusOr<Reply>;

  explicit AskFuture(std::shared_ptr<internal::AskState<Reply>> state)
      : state_(std::move(state)) {}

  // True once a reply, an error or the deadline has completed the request.
  bool ready() const { return state_->ready(); }
  // Blocks until completed (at the latest at the deadline, while the executor
  // runs). Never call it on an executor thread, nor on the thread that steps a
  // DeterministicExecutor before the request is ready().
  Result Wait() { return state_->Take(); }
  // Calls `callback` exactly once with the result: now if ready, else on the
  // thread that completes the request (an actor's strand or a timer thread).
  // Inside an actor use Actor::Await instead, which comes back to its strand.
  void Then(std::function<void(Result)> callback) { state_->SetCallback(std::move(callback)); }

 private:
  std::shared_ptr<internal::AskState<Reply>> state_;
};

// Lets an actor answer a request after its handler has returned (for example
// once a later message arrives). Movable, not copyable. A Responder destroyed
// without answering fails the request with Unavailable. Keep it in actor state:
// it must not outlive the executor the actor runs on.
class Responder {
 public:
  Responder() = default;
  explicit Responder(std::unique_ptr<internal::ReplyToken> token) : token_(std::move(token)) {}

  // False for a message sent with Tell (replies to it are dropped).
  bool expects_reply() const { return token_ != nullptr; }

  template <class T>
  void Reply(T value) {
    if (token_) token_->Deliver(internal::ErasedValue::Of(std::move(value)));
    token_.reset();
  }
  void Fail(absl::Status status) {
    if (token_) token_->DeliverError(std::move(status));
    token_.reset();
  }

 private:
  std::unique_ptr<internal::ReplyToken> token_;
};

}  // namespace sy::actor
