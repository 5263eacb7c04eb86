// The host-wide bound on requests held by actors (see request_budget.h).
#include "services/expert_host/request_budget.h"

#include "absl/strings/str_cat.h"

namespace sy::expert_host {

RequestBudget::RequestBudget(RequestLimits limits) : limits_(limits) {}

absl::StatusOr<RequestBudget::Ticket> RequestBudget::Take(size_t bytes) {
  {
    absl::MutexLock lock(&held_->mu);
    if (held_->requests + 1 > limits_.max_requests || held_->bytes + bytes > limits_.max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "expert host busy: ", held_->requests, " requests of ", held_->bytes, " bytes are waiting for actors (at most ",
          limits_.max_requests, " requests, ", limits_.max_bytes, " bytes); this one of ", bytes, " bytes is refused"));
    }
    ++held_->requests;
    held_->bytes += bytes;
  }
  Ticket ticket;
  std::shared_ptr<Held> held = held_;
  ticket.hold_ = std::shared_ptr<void>(nullptr, [held, bytes](void*) {
    absl::MutexLock lock(&held->mu);
    --held->requests;
    held->bytes -= bytes;
  });
  return ticket;
}

size_t RequestBudget::requests() const {
  absl::MutexLock lock(&held_->mu);
  return held_->requests;
}

size_t RequestBudget::bytes() const {
  absl::MutexLock lock(&held_->mu);
  return held_->bytes;
}

}  // namespace sy::expert_host
