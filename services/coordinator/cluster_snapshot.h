// What the admin API reports about the cluster, as plain copies made by the actor that
// owns the state (the ClusterActor; the CheckpointActor's CheckpointSnapshot inside),
// so that admin_replies renders values rather than reading actor internals.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "services/cluster/actor_key.h"
#include "services/coordinator/checkpoint_actor.h"
#include "services/coordinator/load_tracker.h"
#include "services/coordinator/membership.h"

namespace sy::coordinator {

// `syctl status`.
struct StatusSnapshot {
  bool insecure = false;         // running --insecure
  uint64_t epoch = 0;
  uint64_t step = 0;             // highest step a live host reported
  uint32_t hosts_alive = 0;
  uint32_t hosts_total = 0;
  uint32_t trainers = 0;         // alive
  std::string phase;
  bool placement_ready = false;
  double max_over_mean_load = 0;  // of the moving host load (0 before placement)
  uint32_t recoveries = 0;
  uint32_t migrations = 0;
  uint32_t replications = 0;
  CheckpointSnapshot checkpoints;
};

// One node of `syctl hosts` (hosts first, then trainers).
struct NodeSnapshot {
  NodeInfo node;
  uint32_t actor_count = 0;  // actors placed on it (0 for trainers)
  double load = 0;           // moving load of its actors (0 for trainers)
};

// One expert of `syctl experts`.
struct ExpertSnapshot {
  cluster::ActorKey expert;
  std::vector<std::string> hosts;          // its replicas
  std::optional<ExpertTokens> last_step;   // tokens and drops of the last folded step, if reported
  double load = 0;                         // moving load
};

}  // namespace sy::coordinator
