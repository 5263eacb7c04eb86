// The "ideal" placement rebalance_bench compares automatic rebalancing with: the
// coordinator's own rebalance planner, with the coordinator's defaults (threshold, max
// replicas, least gain), applied to the static placement over a run's hosts and then
// again to its result until it plans no more moves (one plan moves an actor once, so
// from the static placement a balanced one can take several, as the coordinator's
// successive rebalances do), given each expert's mean routed tokens per step over a
// window of that run's steps (metrics.jsonl): the placement the planner reaches in
// hindsight, knowing the load the window will see. Routing does not depend on placement (the runs of one model on the
// same data are bit-identical), so the fixed-placement run's counts are every run's. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "orchestration/local/run_report.h"
#include "services/cluster/placement_table.h"
#include "services/coordinator/rebalance_planner.h"

namespace sy::bench {

struct IdealPlacement {
  cluster::PlacementTable table;
  std::vector<cluster::Move> moves;  // the planner's, from the static placement, in order
  int rounds = 0;                    // plans made
  double max_over_mean_before = 0;   // predicted host load max/mean of the static placement
  double max_over_mean_after = 0;    // and of the ideal one (both 0 without a move)
};

// `hosts`: the run's host ids; `shape`: its model's. FailedPrecondition when the run
// counted no token in [first, last] or its counts do not match `shape`.
absl::StatusOr<IdealPlacement> PlanIdealPlacement(const local::RunReport& run, const std::vector<std::string>& hosts,
                                                  const cluster::ModelShape& shape, int64_t first, int64_t last,
                                                  const coordinator::RebalanceOptions& planner);

}  // namespace sy::bench
