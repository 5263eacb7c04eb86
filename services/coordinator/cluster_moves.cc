// The ClusterActor's placement moves: joins, drains and rebalances. Migrations between
// live hosts happen live (cluster_live_moves.cc); other moves travel through the newest
// committed checkpoint, the way a recovery restores them; automatic rebalancing runs at
// committed checkpoints (see cluster_actor.h).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "services/coordinator/cluster_actor.h"

namespace sy::coordinator {
namespace {

size_t Replications(const std::vector<cluster::Move>& moves) {
  return static_cast<size_t>(std::count_if(moves.begin(), moves.end(), [](const cluster::Move& m) { return m.replicate; }));
}

}  // namespace

absl::Status ClusterActor::CanMoveActors() const {
  if (checkpoint_.latest_id == 0) {
    return absl::FailedPreconditionError(
        "moving actors needs a committed checkpoint (their state travels through it): take one first "
        "(syctl checkpoint now, or --checkpoint_every)");
  }
  if (recovering_) return absl::UnavailableError("a recovery is under way; try again after it");
  if (live_moves_) {
    return absl::UnavailableError(absl::StrCat("actors are moving live after step ", live_moves_->last_source_step,
                                               "; try again after it"));
  }
  return absl::OkStatus();
}

// Moves between live hosts happen live (StartLiveMoves). The others take effect the way
// a recovery does: the new table goes out, every actor is restored from the latest
// checkpoint (a moved one on its new host) at one step, and the trainers replay from
// there, up to --checkpoint_every steps.
void ClusterActor::StartMigrations(const std::vector<cluster::Move>& moves, const std::string& why) {
  if (moves.empty()) return;
  CountMoves(moves);
  const absl::Status live = CanMoveLive(moves);
  if (live.ok()) return StartLiveMoves(moves, why);
  SY_LOG(INFO) << why << ": the moves go through the latest checkpoint (" << live.message() << ")";
  PlacementChanged();
  Recover(absl::StrCat(why, ": ", moves.size(), " actors move"));
}

void ClusterActor::AdmitWaitingHosts() {
  std::vector<cluster::Move> moves;
  std::vector<std::string> joined;
  for (const std::string& id : hosts_waiting_to_join_) {
    const NodeInfo* node = membership_.Find(id);
    const auto& in_table = table_.hosts();
    if (node == nullptr || !node->alive || node->draining ||
        std::find(in_table.begin(), in_table.end(), id) != in_table.end()) {
      continue;
    }
    const std::vector<cluster::Move> to_it = table_.AddHost(id);
    SY_LOG(INFO) << "host " << id << " joined: " << to_it.size() << " actors move to it";
    moves.insert(moves.end(), to_it.begin(), to_it.end());
    joined.push_back(id);
  }
  hosts_waiting_to_join_.clear();
  StartMigrations(moves, absl::StrCat("host ", absl::StrJoin(joined, ", "), " joined"));
}

void ClusterActor::CountMoves(const std::vector<cluster::Move>& moves) {
  for (const cluster::Move& m : moves) {
    if (m.to.empty()) continue;
    ++(m.replicate ? replications_ : migrations_);
    if (metrics_.migrations != nullptr) (m.replicate ? metrics_.replications : metrics_.migrations)->Increment();
  }
}


RebalanceOptions ClusterActor::Planner(double threshold) const {
  RebalanceOptions planner;
  planner.threshold = threshold;
  planner.max_replicas = options_.max_replicas;
  return planner;
}

void ClusterActor::MaybeAutoRebalance(std::optional<uint64_t> checkpoint_id, uint64_t step) {
  if (!options_.auto_rebalance || !table_.initialized() || recovering_ || live_moves_ || !loads_.has_load()) return;
  // Through a checkpoint: at the newest one only. Live: whenever the load calls for it
  // (a committed checkpoint must exist for the fallback).
  if (checkpoint_id ? *checkpoint_id != checkpoint_.latest_id : !CanMoveActors().ok()) return;
  const std::string at = checkpoint_id ? absl::StrCat("automatic rebalance at checkpoint ", *checkpoint_id, " (step ",
                                                      step, ")")
                                       : absl::StrCat("automatic rebalance at step ", step);
  if (a_trainer_finished_) {
    SY_LOG(INFO) << at << " skipped: a trainer finished, and the moves need every trainer to go on (or roll "
                 << "the hosts back to steps no trainer would redo)";
    return;
  }
  if (last_auto_rebalance_step_ && step < *last_auto_rebalance_step_ + options_.rebalance_every_steps) return;
  const double before = MaxOverMean(loads_.HostLoads(table_));
  if (before <= options_.rebalance_threshold) return;
  const RebalancePlan plan = PlanRebalance(table_, loads_.expert_loads(), Planner(options_.rebalance_threshold));
  last_auto_rebalance_step_ = step;  // tried: the next try waits rebalance_every_steps, moved or not
  if (plan.moves.empty() || plan.max_over_mean_after >= plan.max_over_mean_before) {
    SY_LOG(INFO) << at << ": host load max/mean " << before << " > " << options_.rebalance_threshold
                 << ", but no move lowers it (at most " << options_.max_replicas << " replicas per expert)";
    return;
  }
  if (absl::Status s = table_.Apply(plan.moves); !s.ok()) {
    SY_LOG(ERROR) << "automatic rebalance: cannot apply its plan: " << s;
    return;
  }
  SY_LOG(INFO) << at << ": host load max/mean " << plan.max_over_mean_before << " -> " << plan.max_over_mean_after
               << " (predicted), " << plan.moves.size() << " moves (" << Replications(plan.moves)
               << " of them replicas)";
  StartMigrations(plan.moves, absl::StrCat("automatic rebalance at step ", step));
}

}  // namespace sy::coordinator
