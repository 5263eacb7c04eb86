// The hindsight placement of rebalance_bench (see ideal_placement.h).
#include "tests/bench/cluster/ideal_placement.h"

#include <map>

#include "absl/strings/str_cat.h"

namespace sy::bench {
namespace {

constexpr int kMaxRounds = 8;  // plans in a row at most (each must lower the peak, so few are made)

}  // namespace

absl::StatusOr<IdealPlacement> PlanIdealPlacement(const local::RunReport& run, const std::vector<std::string>& hosts,
                                                  const cluster::ModelShape& shape, int64_t first, int64_t last,
                                                  const coordinator::RebalanceOptions& planner) {
  std::map<cluster::ActorKey, double> loads;
  int64_t steps = 0;
  for (const local::StepRecord& r : run.steps) {
    if (r.step < first || r.step > last) continue;
    if (r.expert_tokens.size() != shape.num_switch_layers) {
      return absl::FailedPreconditionError(absl::StrCat("step ", r.step, " counts ", r.expert_tokens.size(),
                                                        " Switch layers, the model has ", shape.num_switch_layers));
    }
    ++steps;
    for (size_t s = 0; s < r.expert_tokens.size(); ++s) {
      if (r.expert_tokens[s].size() != shape.num_experts) {
        return absl::FailedPreconditionError(absl::StrCat("step ", r.step, " counts ", r.expert_tokens[s].size(),
                                                          " experts, the model has ", shape.num_experts));
      }
      for (size_t e = 0; e < r.expert_tokens[s].size(); ++e) {
        loads[cluster::ActorKey::Expert(static_cast<uint32_t>(s), static_cast<uint32_t>(e))] +=
            static_cast<double>(r.expert_tokens[s][e]);
      }
    }
  }
  if (steps == 0) return absl::FailedPreconditionError(absl::StrCat("no step counted in ", first, "..", last));
  for (auto& [expert, tokens] : loads) tokens /= static_cast<double>(steps);
  IdealPlacement ideal{cluster::PlacementTable(shape), {}};
  if (absl::Status s = ideal.table.Initialize(hosts); !s.ok()) return s;
  for (int round = 0; round < kMaxRounds; ++round) {
    const coordinator::RebalancePlan plan = coordinator::PlanRebalance(ideal.table, loads, planner);
    if (plan.moves.empty()) break;
    if (absl::Status s = ideal.table.Apply(plan.moves); !s.ok()) return s;
    if (round == 0) ideal.max_over_mean_before = plan.max_over_mean_before;
    ideal.max_over_mean_after = plan.max_over_mean_after;
    ideal.moves.insert(ideal.moves.end(), plan.moves.begin(), plan.moves.end());
    ++ideal.rounds;
  }
  return ideal;
}

}  // namespace sy::bench
