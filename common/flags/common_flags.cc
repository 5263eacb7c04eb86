// Definitions of the /metrics endpoint flags and the endpoint they describe (see common_flags.h).
#include "common/flags/common_flags.h"

#include "absl/flags/flag.h"
#include "common/flags/flags.h"

ABSL_FLAG(std::string, metrics_address, "0.0.0.0", "Address the /metrics HTTP endpoint binds.");
ABSL_FLAG(int32_t, metrics_port, -1,
          "Port of the /metrics HTTP endpoint; 0 picks a free port, -1 disables it.");

namespace sy::flags {

absl::StatusOr<std::unique_ptr<metrics::HttpExporter>> StartMetricsExporterFromFlags(
    const metrics::Registry& registry) {
  const int32_t port = absl::GetFlag(FLAGS_metrics_port);
  if (absl::Status range = RequireInRange("metrics_port", int64_t{port}, -1, 65535); !range.ok()) {
    return range;
  }
  if (port == -1) return std::unique_ptr<metrics::HttpExporter>();
  return metrics::HttpExporter::Start(registry, absl::GetFlag(FLAGS_metrics_address),
                                      static_cast<uint16_t>(port));
}

}  // namespace sy::flags
