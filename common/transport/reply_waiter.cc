// ReplyWaiter (see reply_waiter.h).
#include "common/transport/reply_waiter.h"

#include <utility>

namespace sy::transport {

ReplyWaiter::ReplyWaiter() { (void)wake_.Open(); }  // without it: Wait alone (fd() is -1)

void ReplyWaiter::Set(absl::StatusOr<DecodedMessage> outcome) {
  {
    absl::MutexLock lock(&mu_);
    outcome_ = std::move(outcome);
  }
  if (fd() >= 0) wake_.Wake();
}

bool ReplyWaiter::Done() {
  absl::MutexLock lock(&mu_);
  return outcome_.has_value();
}

void ReplyWaiter::Drain() {
  if (fd() >= 0) wake_.Drain();
}

absl::StatusOr<DecodedMessage> ReplyWaiter::Wait() {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return outcome_.has_value(); };
  mu_.Await(absl::Condition(&done));
  return *std::move(outcome_);
}

}  // namespace sy::transport
