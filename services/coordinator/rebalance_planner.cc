// Greedy rebalance planning (see rebalance_planner.h).
#include "services/coordinator/rebalance_planner.h"

#include <algorithm>
#include <set>

namespace sy::coordinator {
namespace {

constexpr double kEpsilon = 1e-9;

struct State {
  std::vector<std::string> hosts;                      // NaturalLess order
  std::map<cluster::ActorKey, std::vector<std::string>> placed;  // actor -> replicas
  std::map<cluster::ActorKey, double> loads;

  double Load(const cluster::ActorKey& a) const {
    auto it = loads.find(a);
    return it == loads.end() ? 0.0 : it->second;
  }
  double Share(const cluster::ActorKey& a) const { return Load(a) / static_cast<double>(placed.at(a).size()); }
  std::map<std::string, double> HostLoads() const {
    std::map<std::string, double> out;
    for (const std::string& h : hosts) out[h] = 0;
    for (const auto& [a, reps] : placed) {
      for (const std::string& h : reps) {
        if (out.count(h) != 0) out[h] += Share(a);
      }
    }
    return out;
  }
  bool Holds(const cluster::ActorKey& a, const std::string& h) const {
    const auto& reps = placed.at(a);
    return std::find(reps.begin(), reps.end(), h) != reps.end();
  }
  // Least-loaded host not holding `a` ("" when none).
  std::string Coolest(const cluster::ActorKey& a, const std::map<std::string, double>& host_loads) const {
    std::string best;
    for (const std::string& h : hosts) {
      if (Holds(a, h)) continue;
      if (best.empty() || host_loads.at(h) < host_loads.at(best) - kEpsilon) best = h;
    }
    return best;
  }
};

}  // namespace

double MaxOverMean(const std::map<std::string, double>& host_loads) {
  if (host_loads.empty()) return 0;
  double total = 0, peak = 0;
  for (const auto& [h, l] : host_loads) {
    total += l;
    peak = std::max(peak, l);
  }
  if (total <= 0) return 0;
  return peak / (total / static_cast<double>(host_loads.size()));
}

RebalancePlan PlanRebalance(const cluster::PlacementTable& table, const std::map<cluster::ActorKey, double>& loads,
                            const RebalanceOptions& options) {
  State state{table.hosts(), table.entries(), loads};
  RebalancePlan plan;
  plan.max_over_mean_before = MaxOverMean(state.HostLoads());
  std::set<cluster::ActorKey> migrated, replicated;  // an actor moves at most once per plan
  const size_t max_steps = 4 * state.placed.size() + 4;
  for (size_t step = 0; step < max_steps && state.hosts.size() > 1; ++step) {
    const auto host_loads = state.HostLoads();
    double total = 0;
    std::string hottest;
    for (const std::string& h : state.hosts) {
      total += host_loads.at(h);
      if (hottest.empty() || host_loads.at(h) > host_loads.at(hottest) + kEpsilon) hottest = h;
    }
    const double mean = total / static_cast<double>(state.hosts.size());
    const double peak = host_loads.at(hottest);
    if (total <= 0 || peak <= options.threshold * mean + kEpsilon) break;

    // The hottest host's loaded experts, heaviest share first, not migrated yet.
    std::vector<cluster::ActorKey> candidates;
    for (const auto& [a, reps] : state.placed) {
      if (!a.dense && migrated.count(a) == 0 && state.Holds(a, hottest) && state.Share(a) > 0) candidates.push_back(a);
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](const cluster::ActorKey& x, const cluster::ActorKey& y) { return state.Share(x) > state.Share(y) + kEpsilon; });
    if (candidates.empty()) break;

    auto migrate = [&](const cluster::ActorKey& a, const std::string& to) {
      *std::find(state.placed[a].begin(), state.placed[a].end(), hottest) = to;
      plan.moves.push_back({a, hottest, to, false});
      migrated.insert(a);
    };
    // Replicating `a` onto the coolest other host, when that lowers the peak.
    auto replicate = [&](const cluster::ActorKey& a) {
      const std::string to = state.Coolest(a, host_loads);
      const auto replicas = state.placed[a].size();
      const double new_share = state.Load(a) / static_cast<double>(replicas + 1);
      if (to.empty() || static_cast<int>(replicas) >= options.max_replicas ||
          host_loads.at(to) + new_share >= peak - kEpsilon) {
        return false;
      }
      state.placed[a].push_back(to);
      plan.moves.push_back({a, hottest, to, true});
      replicated.insert(a);
      return true;
    };
    bool acted = false;
    const cluster::ActorKey heaviest = candidates.front();
    // 1. An expert that alone exceeds the limit fits nowhere: split it first.
    if (state.Share(heaviest) > options.threshold * mean + kEpsilon) acted = replicate(heaviest);
    // 2. A migration that fits under the threshold, heaviest first.
    for (size_t i = 0; !acted && i < candidates.size(); ++i) {
      const cluster::ActorKey& a = candidates[i];
      if (replicated.count(a) != 0) continue;
      const std::string to = state.Coolest(a, host_loads);
      if (!to.empty() && host_loads.at(to) + state.Share(a) <= options.threshold * mean + kEpsilon) {
        migrate(a, to);
        acted = true;
      }
    }
    // 3. A migration that lowers the peak; the receiver may become the next hottest
    //    and pass a lighter expert on (each actor migrates once, so this ends).
    if (!acted) {
      for (const cluster::ActorKey& a : candidates) {
        if (replicated.count(a) != 0) continue;
        const std::string to = state.Coolest(a, host_loads);
        if (!to.empty() && host_loads.at(to) + state.Share(a) < peak - kEpsilon) {
          migrate(a, to);
          acted = true;
          break;
        }
      }
    }
    // 4. Last resort for an expert heavier than the mean host: split it.
    if (!acted && state.Share(heaviest) > mean - kEpsilon) acted = replicate(heaviest);
    if (!acted) break;
  }
  plan.max_over_mean_after = MaxOverMean(state.HostLoads());
  // The mean does not change (the same load over the same hosts): max/mean falls as the peak does.
  const bool reaches_threshold = plan.max_over_mean_after <= options.threshold + kEpsilon;
  if (!reaches_threshold &&
      plan.max_over_mean_after > (1 - options.min_peak_gain) * plan.max_over_mean_before + kEpsilon) {
    plan.moves.clear();
    plan.max_over_mean_after = plan.max_over_mean_before;
  }
  return plan;
}

}  // namespace sy::coordinator
