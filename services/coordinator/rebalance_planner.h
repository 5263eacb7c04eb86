// The rebalance planner: given the placement table and the moving load of every
// expert, the moves that bring max/mean host load to <= threshold.
//
// Greedy, deterministic (ties broken by host order, then actor key), and it never
// moves an actor needlessly: nothing when the cluster is within the threshold, every
// move strictly lowers the hottest host's load, and an actor migrates at most once
// per plan. While the hottest host is over threshold * mean, it takes the first of:
//   1. its heaviest expert alone exceeds threshold * mean (it fits nowhere): replicate
//      it onto the least-loaded host not holding it (replicas split its work by whole
//      micro-batches);
//   2. migrate its heaviest expert whose share fits under threshold * mean on the
//      least-loaded host that does not hold it;
//   3. migrate its heaviest expert whose move still lowers the peak (the receiver
//      may pass a lighter expert on in a later round);
//   4. replicate its heaviest expert if it is heavier than the mean host load and
//      that lowers the peak (such an expert can only be fixed this way);
//   5. else stop: nothing helps.
// A plan that leaves the cluster above the threshold and lowers the hottest host's load by
// less than min_peak_gain is dropped (no moves): each move streams state, each replica
// exchanges gradients every step from then on, and a few percent of balance (often a
// passing skew, as the router learns) does not repay them.
// Pure function of its inputs. Thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "services/cluster/placement_table.h"

namespace sy::coordinator {

struct RebalanceOptions {
  double threshold = 1.25;  // max/mean host load allowed
  int max_replicas = 4;     // per actor
  // The least fraction by which a plan that does not reach the threshold must lower the
  // hottest host's load (0: any improvement).
  double min_peak_gain = 0.1;
};

struct RebalancePlan {
  std::vector<cluster::Move> moves;
  double max_over_mean_before = 0;  // 0 when there is no load
  double max_over_mean_after = 0;   // predicted, after the moves
};

// `loads`: moving tokens per step per expert (absent = 0). Only hosts in
// table.hosts() are candidates and count in the mean.
RebalancePlan PlanRebalance(const cluster::PlacementTable& table, const std::map<cluster::ActorKey, double>& loads,
                            const RebalanceOptions& options);

// max/mean of the hosts' loads (0 when their total is 0).
double MaxOverMean(const std::map<std::string, double>& host_loads);

}  // namespace sy::coordinator
