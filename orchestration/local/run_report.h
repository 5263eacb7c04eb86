// Reads a finished run's record (DIR/metrics.jsonl and DIR/summary.json, as
// written by trainer 0 or the standalone trainer, through nlohmann::json) and
// formats the summary that sy-local prints at the end: loss curve start/end,
// validation loss, tokens/s, parameter checksum, replica check, wire bytes and a
// per-expert load table. Also adds what the coordinator saw to summary.json, and
// reads it back. Used by the cluster benchmarks too. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sy::local {

struct StepRecord {
  int64_t step = 0;
  double loss = 0;
  std::optional<double> val_loss;
  double tokens_per_s = 0;
  double dropped_frac = 0;  // routed tokens dropped by capacity (over all Switch layers)
  std::optional<int64_t> bytes_sent;
  std::vector<std::vector<int64_t>> expert_tokens;  // per Switch layer, per expert
};

// The coordinator's counts of a run.
struct ClusterCounts {
  uint32_t recoveries = 0;
  uint32_t checkpoints = 0;  // committed
  uint32_t migrations = 0;
  uint32_t replications = 0;
};

// Hottest host's tokens over the mean host's, over the first and the last 10 steps.
struct HostLoadRatios {
  double first_10_steps = 0;
  double last_10_steps = 0;
};

// One step's tokens per host as the coordinator counted them, with the placement epoch in force.
struct HostLoadAtStep {
  uint64_t step = 0;
  uint64_t epoch = 0;
  std::map<std::string, double> tokens;  // host -> tokens routed to its experts
};

// What sy-local adds to summary.json after a run with a coordinator. A part whose
// coordinator query failed after training is absent, and `missing` says why.
struct ClusterRecord {
  std::optional<ClusterCounts> counts;
  std::optional<HostLoadRatios> max_over_mean_host_load;
  std::map<std::string, double> host_cpu_seconds;  // host -> user+system CPU seconds of its process
  std::map<std::string, std::string> missing;      // coordinator query -> why it failed
  // For sy-report's pictures (written, not read back here): the per-step host load
  // (absent when empty) and the committed checkpoints' steps (absent when unset).
  std::vector<HostLoadAtStep> host_load_per_step;
  std::optional<std::vector<uint64_t>> checkpoint_steps;
};

struct RunReport {
  std::vector<StepRecord> steps;  // metrics.jsonl, in file order
  // summary.json
  int64_t summary_steps = 0;
  double final_loss = 0;
  std::optional<double> final_val_loss;
  std::string param_checksum;
  double median_tokens_per_s = 0;
  std::optional<int> hosts;
  std::optional<int> trainers;
  // The leader's end-of-run replica check (distributed runs only): experts held
  // by more than one host at the end, and how many of them had replicas that differed.
  std::optional<int> replicated_actors;
  std::optional<int> replica_mismatches;
  std::optional<ClusterRecord> cluster;  // once sy-local added it
};

// Parses the two files in `workdir`. NotFound when one is missing,
// DataLoss when one is not the expected JSON (a line, a field, a type, only
// one of replicated_actors / replica_mismatches, or a partial cluster record).
absl::StatusOr<RunReport> ReadRunReport(const std::string& workdir);

// Adds `record`'s fields (recoveries, checkpoints, migrations, replications,
// max_over_mean_host_load {first_10_steps, last_10_steps}, host_cpu_seconds {host:
// seconds}, host_load_per_step [{step, epoch, tokens {host: tokens}}], checkpoint_steps
// [step], and missing {query: error} when a part is absent) to the JSON object in the summary.json at `path`, replacing the file
// through a temporary one. DataLoss when it holds no JSON object.
absl::Status AddClusterRecordToSummary(const std::string& path, const ClusterRecord& record);

// Mean loss over the first (or last) `count` steps (fewer when the run is shorter; 0 when empty).
double MeanLossOfFirst(const RunReport& report, int count);
double MeanLossOfLast(const RunReport& report, int count);

// Tokens routed to each expert, summed over every step, per Switch layer.
std::vector<std::vector<int64_t>> TotalExpertTokens(const RunReport& report);

// Mean dropped_frac over the steps (0 when empty).
double MeanDroppedFraction(const RunReport& report);

// Mean bytes_sent per step over the steps that report it; nullopt when none does.
std::optional<double> MeanBytesSentPerStep(const RunReport& report);

// The human summary printed by sy-local (several lines, newline-terminated).
std::string FormatRunReport(const RunReport& report);

}  // namespace sy::local
