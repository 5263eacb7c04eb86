// The flags of a Switchyard service with a /metrics endpoint (sy-coordinator, sy-trainer), defined
// once in sy_flags: --log_level (log_level_flag.h) and
//   --metrics_address  address the /metrics endpoint listens on (default 0.0.0.0)
//   --metrics_port     port of /metrics; 0 picks a free port, -1 disables (default -1)
//
//   sy::flags::ParseCommandLine(argc, argv, usage);
//   sy::flags::ExitIfInvalid({sy::flags::ApplyLogLevelFlag()});
//   auto exporter = sy::flags::StartMetricsExporterFromFlags(registry);
//
// Not thread-safe: call from main() before starting threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "common/flags/log_level_flag.h"
#include "common/metrics/http_exporter.h"
#include "common/metrics/registry.h"

ABSL_DECLARE_FLAG(std::string, metrics_address);
ABSL_DECLARE_FLAG(int32_t, metrics_port);

namespace sy::flags {

// Starts the /metrics endpoint described by --metrics_address/--metrics_port.
// Returns nullptr when --metrics_port=-1; InvalidArgument for a port outside
// -1..65535; the exporter's own errors (busy port) otherwise.
absl::StatusOr<std::unique_ptr<metrics::HttpExporter>> StartMetricsExporterFromFlags(
    const metrics::Registry& registry);

}  // namespace sy::flags
