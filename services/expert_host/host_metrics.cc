// Error replies counted by code (see host_metrics.h).
#include "services/expert_host/host_metrics.h"

#include <string>

namespace sy::expert_host {

void FailAndCount(metrics::Registry* registry, transport::Responder& responder, const absl::Status& status) {
  if (registry != nullptr) {
    registry
        ->GetCounter("sy_host_errors_total", "Requests answered with an error, by status code.",
                     {{"code", absl::StatusCodeToString(status.code())}})
        .Increment();
  }
  responder.Fail(status);
}

}  // namespace sy::expert_host
