// Bytes of requests handed to the coordinator's actors (see request_admission.h).
#include "services/coordinator/request_admission.h"

#include "absl/strings/str_cat.h"

namespace sy::coordinator {

RequestAdmission::RequestAdmission(size_t max_bytes) : max_bytes_(max_bytes) {}

absl::StatusOr<RequestAdmission::Ticket> RequestAdmission::Admit(size_t bytes, absl::Time deadline) {
  State* state = state_.get();
  {
    absl::MutexLock lock(&state->mu);
    auto fits = [&]() ABSL_SHARED_LOCKS_REQUIRED(state->mu) {
      return state->admitted == 0 || state->admitted + bytes <= max_bytes_;
    };
    state->mu.AwaitWithDeadline(absl::Condition(&fits), deadline);
    if (!fits()) {
      return absl::ResourceExhaustedError(absl::StrCat("the coordinator is busy: ", state->admitted,
                                                       " bytes of requests wait to be handled (at most ", max_bytes_,
                                                       ")"));
    }
    state->admitted += bytes;
  }
  return Ticket(nullptr, [state = state_, bytes](void*) {
    absl::MutexLock lock(&state->mu);
    state->admitted -= bytes;
  });
}

}  // namespace sy::coordinator
