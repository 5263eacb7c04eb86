// The run's machine-readable record, identical for the standalone and the
// distributed trainer: DIR/metrics.jsonl (one JSON object per step) and
// DIR/summary.json (written once at the end), built with nlohmann::json. Non-finite
// numbers are written as null so every line stays valid JSON; whole numbers as
// integers, the others with every digit they need to read back exactly.
// MetricsWriter is not thread-safe: one writer per run, used by the thread driving the steps.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sy::trainer {

struct StepMetrics {
  int64_t step = 0;
  double loss = 0;     // total loss (CE + lb + z), mean over the step's micro-batches
  double lb_loss = 0;  // load-balancing loss summed over Switch layers
  double z_loss = 0;   // router z-loss summed over Switch layers
  std::optional<double> val_loss;  // only on steps where validation ran
  double tokens_per_s = 0;
  double dropped_frac = 0;  // fraction of routed tokens dropped by capacity
  std::vector<std::vector<int64_t>> expert_tokens;  // per Switch layer, tokens routed to each expert
  std::optional<int64_t> bytes_sent;  // distributed runs only
  std::vector<double> switch_layer_dropped_frac;  // per Switch layer, fraction of its tokens dropped by capacity
};

// A rollback of a distributed run (a recovery, or actors moved through a checkpoint):
// the trainers had recorded up to `reached_step` and replay from `to_step` + 1.
struct Rollback {
  int64_t reached_step = 0;
  int64_t to_step = 0;
};

// summary.json's fields.
struct RunSummary {
  int64_t steps = 0;
  double final_loss = 0;
  std::optional<double> final_val_loss;
  std::string param_checksum;  // 16 hex digits
  double median_tokens_per_s = 0;
  std::optional<int> hosts;     // distributed runs only
  std::optional<int> trainers;  // distributed runs only
  std::optional<int> replicated_actors;   // distributed runs only: actors on more than one host at the end
  std::optional<int> replica_mismatches;  // distributed runs only: of those, how many replicas differed
  std::vector<Rollback> rollbacks;        // in the order they came (written only when there was one)
  // For each recovery from a failure: seconds from the coordinator's detection of the
  // failure to the first step recorded after it (written always, with replayed_steps:
  // the steps recorded again after the rollbacks, sum of reached_step - to_step).
  std::vector<double> recovery_seconds;
};

// Steps computed more than once because of `rollbacks`.
int64_t ReplayedSteps(const std::vector<Rollback>& rollbacks);

// One JSON object on one line, no trailing newline. Keys in a fixed order.
std::string StepMetricsJson(const StepMetrics& m);
std::string RunSummaryJson(const RunSummary& s);

// Median of `values` (mean of the two middle values for even sizes; 0 when empty).
double Median(std::vector<double> values);

// Appends StepMetrics lines to a metrics.jsonl file, flushing after each line so
// a crashed run keeps every finished step. After a rollback, DropAfter removes
// the lines of the steps that will be replayed, so the file ends with exactly one
// line per step.
class MetricsWriter {
 public:
  // Creates or truncates `path`; FailedPrecondition when it cannot be created
  // (missing directory, no permission): retrying will not help.
  static absl::StatusOr<std::unique_ptr<MetricsWriter>> Create(const std::string& path);
  // Takes over the file another writer (a leader that died) left at `path`: keeps
  // its lines of steps <= `step` (a missing file counts as empty) and appends after
  // them. `tokens_per_s` (may be null) gets each kept step's throughput. DataLoss
  // for a line without a step.
  static absl::StatusOr<std::unique_ptr<MetricsWriter>> Adopt(const std::string& path, int64_t step,
                                                              std::map<int64_t, double>* tokens_per_s);
  absl::Status Append(const StepMetrics& m);
  // Rewrites the file with only the lines of steps <= `step` (DataLoss when it cannot).
  absl::Status DropAfter(int64_t step);

 private:
  explicit MetricsWriter(std::string path) : path_(std::move(path)) {}
  std::string path_;
  std::ofstream out_;
  std::vector<std::pair<int64_t, std::string>> lines_;  // (step, JSON) of every line in the file
};

// Writes summary.json at `path` (replacing it) with a trailing newline.
absl::Status WriteRunSummary(const std::string& path, const RunSummary& s);

}  // namespace sy::trainer
