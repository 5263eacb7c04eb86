// What a run keeps of its steps, the same for the standalone and the distributed
// trainer: the progress line printed after each recorded step, metrics.jsonl (when
// this trainer writes the files and a workdir is set), the validation curve and each
// step's throughput, and at the end the checksum line and summary.json. A rollback
// drops the records of the steps it replays; a trainer that becomes the leader takes
// over the metrics the old one left. Not thread-safe: the thread driving the steps owns it.
//
//   RunRecords records = RunRecords::Open(options, /*writes_files=*/true, std::cout).value();
//   records.Record(metrics);                      // after each step
//   RunResult r = records.Finish(checksum, shape).value();
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/cluster/options.h"
#include "services/trainer/metrics_files.h"

namespace sy::trainer {

// What a run ends with: its summary.json and the validation curve.
struct RunResult : RunSummary {
  std::vector<std::pair<int64_t, double>> val_curve;  // (step, val loss) at each evaluation
};

// The processes a distributed run used, for summary.json (unset for a standalone run).
struct RunShape {
  std::optional<int> hosts;
  std::optional<int> trainers;
};

class RunRecords {
 public:
  // With `writes_files` and options.workdir set: creates the workdir
  // (FailedPrecondition when it cannot) and metrics.jsonl. The run's clock starts now.
  static absl::StatusOr<RunRecords> Open(const cluster::TrainerOptions& options, bool writes_files,
                                         std::ostream& progress);

  // A step's metrics (val_loss set when validation ran): result, progress line, metrics line.
  absl::Status Record(const StepMetrics& metrics);
  // A rollback to `step`: forgets the records of later steps (the replay records them again)
  // and notes the rollback for summary.json. With `failed_at_unix_ms` (the failure it
  // recovers from, as the coordinator detected it), the next recorded step adds the time
  // since then to summary.json's recovery_seconds.
  absl::Status DropAfter(int64_t step, int64_t failed_at_unix_ms = 0);
  // This trainer writes the files from now on (the leader that did is gone): it keeps
  // the old leader's metrics of steps <= `step`. False when it already writes them or
  // there is no workdir.
  absl::StatusOr<bool> TakeOver(int64_t step);
  // The end of a finished run: median throughput, `checksum`, the checksum line and
  // summary.json (with the shape and the replica counts of a distributed run).
  absl::StatusOr<RunResult> Finish(const std::string& checksum, const RunShape& shape);

  RunResult& result() { return result_; }

 private:
  RunRecords(const cluster::TrainerOptions& options, std::ostream& progress);

  int64_t total_steps_ = 0;
  std::string workdir_;
  std::ostream* progress_;
  std::chrono::steady_clock::time_point start_;
  std::unique_ptr<MetricsWriter> writer_;  // null while another trainer writes the files
  RunResult result_;
  std::map<int64_t, double> throughput_;  // step -> tokens/s
  int64_t recovering_since_unix_ms_ = 0;  // a failure whose first step after it is not recorded yet
};

}  // namespace sy::trainer
