// LoadTracker: the moving token load of every expert, from the trainers' per-step
// reports. Reports for one step are summed (several trainers share a step); a step
// is folded into the exponential moving average when every expected reporter sent
// it, or when a report for a later step arrives. load = alpha * tokens(step) +
// (1 - alpha) * load; the first folded step sets the load directly. A report for a
// step already folded is late: counted and ignored.
//
// Not thread-safe: owned by the coordinator's state actor.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "services/cluster/actor_key.h"
#include "services/cluster/placement_table.h"

namespace sy::coordinator {

struct ExpertTokens {
  cluster::ActorKey expert;
  uint64_t tokens = 0;   // routed to it (before capacity)
  uint64_t dropped = 0;  // dropped by capacity
};

class LoadTracker {
 public:
  explicit LoadTracker(double alpha = 0.5) : alpha_(alpha) {}

  // `expected_reporters`: trainers alive now (a step folds once that many reported it).
  void Report(const std::string& trainer, uint64_t step, const std::vector<ExpertTokens>& loads,
              size_t expected_reporters);

  // Moving load per expert (tokens per step); experts never reported are absent.
  const std::map<cluster::ActorKey, double>& expert_loads() const { return ema_; }
  double ExpertLoad(const cluster::ActorKey& expert) const;
  // Tokens and drops of the last folded step.
  const std::map<cluster::ActorKey, ExpertTokens>& last_step() const { return last_; }
  uint64_t last_folded_step() const { return last_folded_step_; }
  bool has_load() const { return folded_any_; }
  uint64_t late_reports() const { return late_reports_; }

  // Load of each host in `table`: every actor's load divided among its replicas.
  std::map<std::string, double> HostLoads(const cluster::PlacementTable& table) const;

 private:
  void Fold();

  double alpha_;
  bool folded_any_ = false;
  bool pending_any_ = false;
  uint64_t pending_step_ = 0;
  uint64_t last_folded_step_ = 0;
  std::map<cluster::ActorKey, ExpertTokens> pending_;
  std::set<std::string> pending_reporters_;
  std::map<cluster::ActorKey, ExpertTokens> last_;
  std::map<cluster::ActorKey, double> ema_;
  uint64_t late_reports_ = 0;
};

}  // namespace sy::coordinator
