// The expert host's error-reply counters, shared by the door (HostService) and
// the actors: sy_host_errors_total{code} counts every request answered with an
// error, by status code; sy_refused_total{reason} counts the requests refused
// because a resource bound was hit (step window, parking, restores, in-flight
// bytes). Thread-safe (the registry is).
#pragma once

#include "absl/status/status.h"
#include "common/metrics/registry.h"
#include "common/transport/rpc.h"

namespace sy::expert_host {

// Answers `responder` with `status` (not OK) and counts it; registry may be null.
void FailAndCount(metrics::Registry* registry, transport::Responder& responder, const absl::Status& status);

// Counts one refusal for `reason` in sy_refused_total{reason} and returns `status`
// (not OK); registry may be null.
absl::Status Refused(metrics::Registry* registry, const char* reason, absl::Status status);

}  // namespace sy::expert_host
