// What the requests handed to a service's actors hold at once (see request_budget.h).
#include "common/actor/request_budget.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace sy::actor {

RequestBudget::RequestBudget(std::string owner, Limits limits) : owner_(std::move(owner)), limits_(limits) {}

bool RequestBudget::Fits(size_t bytes) const {
  return held_->requests < limits_.max_requests && held_->bytes <= limits_.max_bytes &&
         bytes <= limits_.max_bytes - held_->bytes;
}

absl::Status RequestBudget::Busy(size_t bytes) const {
  const std::string most = limits_.max_requests == std::numeric_limits<size_t>::max()
                               ? absl::StrCat(limits_.max_bytes, " bytes")
                               : absl::StrCat(limits_.max_requests, " requests, ", limits_.max_bytes, " bytes");
  return absl::ResourceExhaustedError(absl::StrCat(owner_, " is busy: ", held_->requests, " requests of ",
                                                   held_->bytes, " bytes wait for its actors (at most ", most,
                                                   "); this one of ", bytes, " bytes is refused"));
}

RequestBudget::Ticket RequestBudget::Hold(size_t bytes) {
  ++held_->requests;
  held_->bytes += bytes;
  Ticket ticket;
  ticket.hold_ = std::shared_ptr<void>(nullptr, [held = held_, bytes](void*) {
    absl::MutexLock lock(&held->mu);
    --held->requests;
    held->bytes -= bytes;
  });
  return ticket;
}

absl::StatusOr<RequestBudget::Ticket> RequestBudget::TryTake(size_t bytes) {
  absl::MutexLock lock(&held_->mu);
  if (!Fits(bytes)) return Busy(bytes);
  return Hold(bytes);
}

absl::StatusOr<RequestBudget::Ticket> RequestBudget::Take(size_t bytes, absl::Time deadline) {
  absl::MutexLock lock(&held_->mu);
  auto admissible = [&]() ABSL_SHARED_LOCKS_REQUIRED(held_->mu) { return held_->requests == 0 || Fits(bytes); };
  held_->mu.AwaitWithDeadline(absl::Condition(&admissible), deadline);
  if (!admissible()) return Busy(bytes);
  return Hold(bytes);
}

size_t RequestBudget::requests() const {
  absl::MutexLock lock(&held_->mu);
  return held_->requests;
}

size_t RequestBudget::bytes() const {
  absl::MutexLock lock(&held_->mu);
  return held_->bytes;
}

}  // namespace sy::actor
