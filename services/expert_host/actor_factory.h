// Builds an expert host's ParamActors: an actor for a coordinator key with the
// model's initial state for it on the backend, serving at once or, when placed at
// runtime, waiting for a checkpoint restore. Uses the backend: call it on the
// runtime's thread once the host serves (the backend is used by one thread at a time).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "common/actor/executor.h"
#include "common/metrics/registry.h"
#include "gpu/backend.h"
#include "services/cluster/actor_key.h"
#include "services/expert_host/host_config.h"
#include "services/expert_host/model_actors.h"
#include "services/expert_host/param_actor.h"

namespace sy::expert_host {

class ActorFactory {
 public:
  // Everything passed must outlive the factory; `device` (null: no emulation) is the actors'.
  ActorFactory(const HostConfig& config, const ModelActors* model, gpu::Backend* backend,
               actor::Executor* executor, metrics::Registry* registry, EmulatedDevice* device);

  // A new actor for `key` with the model's initial weights for it (valid ones unless
  // awaiting_restore); InvalidArgument for a key the model lacks.
  absl::StatusOr<std::shared_ptr<ParamActor>> Build(const cluster::ActorKey& key, bool awaiting_restore) const;

 private:
  HostConfig config_;
  const ModelActors* model_;
  gpu::Backend* backend_;
  actor::Executor* executor_;
  metrics::Registry* registry_;
  EmulatedDevice* device_;
};

}  // namespace sy::expert_host
