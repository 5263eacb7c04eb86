// ReplyWaiter (see reply_waiter.h).
#include "common/transport/reply_waiter.h"

#include <utility>

namespace sy::transport {
namespace {

// The calling thread's eventfd, opened on its first blocking call; null if that failed.
std::shared_ptr<WakeFd> ThreadWakeFd() {
  thread_local const std::shared_ptr<WakeFd> wake = [] {
    auto opened = std::make_shared<WakeFd>();
    return opened->Open().ok() ? opened : nullptr;
  }();
  return wake;
}

}  // namespace

ReplyWaiter::ReplyWaiter() : wake_(ThreadWakeFd()), waiting_thread_(std::this_thread::get_id()) {}

void ReplyWaiter::Set(absl::StatusOr<DecodedMessage> outcome) {
  {
    absl::MutexLock lock(&mu_);
    outcome_ = std::move(outcome);
  }
  // The waiting thread itself (it read the reply) is awake: no write to drain later.
  if (wake_ != nullptr && std::this_thread::get_id() != waiting_thread_) wake_->Wake();
}

bool ReplyWaiter::Done() {
  absl::MutexLock lock(&mu_);
  return outcome_.has_value();
}

void ReplyWaiter::Drain() {
  if (wake_ != nullptr) wake_->Drain();
}

absl::StatusOr<DecodedMessage> ReplyWaiter::Wait() {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return outcome_.has_value(); };
  mu_.Await(absl::Condition(&done));
  return *std::move(outcome_);
}

}  // namespace sy::transport
