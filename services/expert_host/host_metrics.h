// The expert host's error-reply counter, shared by the door (HostService) and the
// actors: sy_host_errors_total{code} counts every request answered with an error, by
// status code. (Refusals because a bound was hit, e.g. the step window, parking,
// restores or in-flight bytes, go through transport::Refuse: sy_refused_total{reason}
// and a rate-limited log line.) Thread-safe (the registry is).
#pragma once

#include "absl/status/status.h"
#include "common/metrics/registry.h"
#include "common/transport/rpc.h"

namespace sy::expert_host {

// Answers `responder` with `status` (not OK) and counts it; registry may be null.
void FailAndCount(metrics::Registry* registry, transport::Responder& responder, const absl::Status& status);

}  // namespace sy::expert_host
