// The "ideal" placement rebalance_bench compares automatic rebalancing with: the
// coordinator's own rebalance planner, with the coordinator's defaults (threshold, max
// replicas), applied once to the static placement over a run's hosts, given each
// expert's mean routed tokens per step over a window of that run's steps (metrics.jsonl)
// — the placement the planner picks in hindsight, knowing the load the window will
// see. Routing does not depend on placement (the runs of one model on the same data
// are bit-identical), so the fixed-placement run's counts are every run's. Pure
// functions; thread-safe.
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
  coordinator::RebalancePlan plan;  // the planner's moves from the static placement
};

// `hosts`: the run's host ids; `shape`: its model's. FailedPrecondition when the run
// counted no token in [first, last] or its counts do not match `shape`.
absl::StatusOr<IdealPlacement> PlanIdealPlacement(const local::RunReport& run, const std::vector<std::string>& hosts,
                                                  const cluster::ModelShape& shape, int64_t first, int64_t last,
                                                  const coordinator::RebalanceOptions& planner);

}  // namespace sy::bench
