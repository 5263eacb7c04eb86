// End-of-run comparison of replicated experts' state (see replica_check.h).
#include "services/trainer/replica_check.h"

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log/log.h"
#include "services/cluster/switch_layers.h"

namespace sy::trainer {

absl::StatusOr<ReplicaCheck> CheckReplicas(const gpu::ModelConfig& config, const cluster::Placement& placement,
                                           StepClient& steps, const std::string& trainer_id) {
  // Only experts are served by replica: the placement keeps one host per dense shard.
  // The hosts' status names experts by Switch layer; the placement by model layer.
  std::map<cluster::ActorKey, std::vector<int>> replicated;  // expert -> hosts
  std::set<int> hosts;
  for (int s = 0; s < cluster::SwitchLayerCount(config); ++s) {
    const int layer = cluster::ModelLayerOf(s, config).value();
    for (int e = 0; e < config.experts; ++e) {
      std::vector<int> replicas = placement.ExpertReplicas(layer, e);
      if (replicas.size() < 2) continue;
      hosts.insert(replicas.begin(), replicas.end());
      replicated[cluster::ActorKey::Expert(static_cast<uint32_t>(s), static_cast<uint32_t>(e))] = std::move(replicas);
    }
  }
  std::map<int, std::map<cluster::ActorKey, cluster::ActorStatusValue>> held;  // host -> its experts' status
  for (int h : hosts) {
    absl::StatusOr<HostStatus> status = steps.Status(h);
    if (!status.ok()) {
      return absl::Status(status.status().code(),
                          absl::StrCat("end-of-run replica check: ", status.status().message()));
    }
    for (const cluster::ActorStatusValue& a : status->actors) {
      if (!a.actor.dense) held[h][a.actor] = a;
    }
  }
  ReplicaCheck check;
  check.replicated_actors = static_cast<int>(replicated.size());
  for (const auto& [actor, replicas] : replicated) {
    std::string states;
    bool differ = false;
    const cluster::ActorStatusValue* first = nullptr;
    for (int h : replicas) {
      auto it = held[h].find(actor);
      if (it == held[h].end()) {
        differ = true;
        absl::StrAppend(&states, "; host ", h, " does not hold it");
        continue;
      }
      const cluster::ActorStatusValue& a = it->second;
      absl::StrAppend(&states, "; host ", h, " version ", a.version, absl::StrFormat(" checksum %016x", a.checksum));
      if (first == nullptr) {
        first = &a;
      } else if (a.version != first->version || a.checksum != first->checksum) {
        differ = true;
      }
    }
    if (differ) {
      ++check.replica_mismatches;
      SY_LOG(ERROR) << trainer_id << ": replicas of expert " << actor.ToString() << " differ at the end of the run"
                    << states;
    }
  }
  if (!replicated.empty()) {
    SY_LOG(INFO) << trainer_id << ": " << replicated.size() << " replicated experts at the end of the run, "
                 << check.replica_mismatches << " with replicas that differ";
  }
  return check;
}

}  // namespace sy::trainer
