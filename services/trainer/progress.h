// The one-line progress report printed after every training step, shared by the
// standalone and the distributed trainer:
//   step 12/300 | loss 2.4567 | val 2.5012 | 15234 tok/s | ETA 4m10s
// Pure functions: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sy::trainer {

struct ProgressInfo {
  int64_t step = 0;         // steps completed so far (1-based)
  int64_t total_steps = 0;  // steps in the run
  double loss = 0;          // training loss of this step (CE + aux losses)
  std::optional<double> val_loss;  // present on steps where validation ran
  double tokens_per_s = 0;  // this step's throughput
  double elapsed_s = 0;     // wall time since training began
};

// ETA extrapolates the mean time per step so far over the remaining steps.
std::string FormatProgressLine(const ProgressInfo& info);

// "45s", "4m10s", "1h02m03s"; negative or non-finite inputs print as "?".
std::string FormatDuration(double seconds);

}  // namespace sy::trainer
