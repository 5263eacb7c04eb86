// One way for every door to refuse a request: the refusal is counted in
// sy_refused_total{reason=...} and logged, at most once a second per reason (a flood of
// hostile requests must not become a flood of log lines), with how many refusals of that
// reason the log skipped since its last line.
// Thread-safe.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/metrics/registry.h"

namespace sy::transport {

// Counts `refusal` in `registry` (optional) as sy_refused_total{reason=`reason`}, logs it
// (rate-limited) and returns it.
absl::Status Refuse(metrics::Registry* registry, absl::string_view reason, absl::Status refusal);

}  // namespace sy::transport
