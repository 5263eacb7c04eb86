// The recovery part of rebalance_bench: the same cluster loses its last host after a
// step three ways, and each run reports how long the failure cost:
//   heartbeat + checkpoint: the host is SIGSTOPped (hung: its connection stays up), so
//     only the heartbeat timeout finds it; every actor is restored from the latest
//     checkpoint and the trainers replay from it;
//   fast detection + checkpoint: the host is SIGKILLed; the coordinator notices the
//     dropped connection and a probe confirms it; then the same restore and replay;
//   redundancy: SIGKILL with --redundancy=2: the survivors fail over, only the open step
//     is redone, nothing is restored.
// Each case's detection time (sy-local's signal to the coordinator's "host ... failed"
// line, both wall clocks of this machine), recovery_seconds (detection to the first
// step completed after it, from summary.json), replayed_steps and the time of the
// replayed steps after the first (from their records), and the sum of the times: how
// long until the run is back at the step it had reached; then
// `ratio` lines of the sums against the heartbeat case and of redundancy against fast
// detection alone, all measured in this run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace sy::bench {

struct RecoveryCasesArgs {
  int hosts = 0;
  int64_t steps = 0;          // of each run; the fault comes after step steps / 2
  std::string data;
  std::string workdir;        // each case runs in its own directory under it
  std::vector<std::string> run_flags;  // model, training and host flags passed to every run
  double tokens_per_step = 0;          // of the model: a step record's time is this / its tokens/s
};

// Runs the three cases, prints their table and ratio lines to stdout.
absl::Status MeasureRecoveries(const RecoveryCasesArgs& args);

}  // namespace sy::bench
