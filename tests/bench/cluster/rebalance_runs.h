// The runs of rebalance_bench: one sy-local cluster run (RunLocalCluster in-process) and
// what the bench reads back from its workdir: each step's wall time (tokens per step /
// the step's tokens/s in metrics.jsonl), the steps that carried live moves (from the
// coordinator's log), the run report with the coordinator's record. Also the medians
// over a step window, the same for every run. Not thread-safe (one run at a time).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "orchestration/local/run_report.h"

namespace sy::bench {

struct ClusterRun {
  std::string dir;                       // its workdir
  std::map<int64_t, double> step_ms;     // step -> wall ms (steps with a tokens/s only)
  std::vector<int64_t> live_move_steps;  // the first step after each live-move boundary, ascending
  local::RunReport report;
};

// Runs `launcher_args` (sy-local's flags; --workdir=`dir` is added) and reads it back.
// `tokens_per_step`: micro_batch * micro_batches * context of the model.
absl::StatusOr<ClusterRun> RunCluster(std::vector<std::string> launcher_args, const std::string& dir,
                                      double tokens_per_step, const std::atomic<bool>& stop);

// The steps that carried live moves in the run in `dir`: the step after each boundary the
// coordinator logged ("... move live after step S"), ascending.
std::vector<int64_t> LiveMoveSteps(const std::string& dir);

// Median wall ms of `run`'s steps in [first, last] (0 when it has none there).
double MedianStepMs(const ClusterRun& run, int64_t first, int64_t last);

// The most extra wall time of a step that carried live moves, over `median_ms`, in median
// step times: max over those steps of (ms - median) / median (0 without live moves).
double LiveMoveCostSteps(const ClusterRun& run, double median_ms);

}  // namespace sy::bench
