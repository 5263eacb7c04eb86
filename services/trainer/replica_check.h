// The leader's end-of-run check of replicated experts (replica i of n serves
// micro-batches m % n == i, so every replica must end in the same state): asks every
// host holding a replica for its actors' state checksums (weights + Adam moments) and
// compares the replicas' (version, checksum). Each mismatch is logged at ERROR.
// Not thread-safe (it uses the trainer's StepClient).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "gpu/model/config.h"
#include "services/cluster/placement.h"
#include "services/trainer/step_client.h"

namespace sy::trainer {

struct ReplicaCheck {
  int replicated_actors = 0;   // experts held by more than one host
  int replica_mismatches = 0;  // of those, how many had replicas that differ (or a host that lost it)
};

// The check of every expert `placement` replicates. An error only when a host does
// not answer. `trainer_id` prefixes the log lines.
absl::StatusOr<ReplicaCheck> CheckReplicas(const gpu::ModelConfig& config, const cluster::Placement& placement,
                                           StepClient& steps, const std::string& trainer_id);

}  // namespace sy::trainer
