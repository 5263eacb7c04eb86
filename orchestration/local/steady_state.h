// The steady-state part of a finished run, for the end-to-end benchmarks: a run
// starts with an unbalanced router that drops a third of its tokens over capacity,
// a regime no real run stays in, so throughput and wire bytes are measured only over
// the steps whose dropped share is below a bound (the router has balanced). Training
// is deterministic, so every cluster shape of the same run counts the same steps.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "orchestration/local/run_report.h"

namespace sy::local {

struct SteadyState {
  int steps = 0;  // steps counted: dropped_frac < the bound
  int64_t first_step = 0;
  int64_t last_step = 0;
  double median_tokens_per_s = 0;
  double mean_dropped_frac = 0;
  std::optional<double> bytes_sent_per_step;  // mean over the counted steps that report it
};

// The steps of `report` with dropped_frac below `max_dropped`. FailedPrecondition,
// saying how far the router got, when fewer than `min_steps` qualify (the run was too
// short for the router to balance).
absl::StatusOr<SteadyState> MeasureSteadyState(const RunReport& report, double max_dropped, int min_steps);

}  // namespace sy::local
