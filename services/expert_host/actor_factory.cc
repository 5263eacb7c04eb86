// An expert host's ParamActors built from the model's initial state (see actor_factory.h).
#include "services/expert_host/actor_factory.h"

#include <utility>

namespace sy::expert_host {

ActorFactory::ActorFactory(const HostConfig& config, const ModelActors* model, gpu::Backend* backend,
                           actor::Executor* executor, metrics::Registry* registry, EmulatedDevice* device)
    : config_(config), model_(model), backend_(backend), executor_(executor), registry_(registry), device_(device) {}

absl::StatusOr<std::shared_ptr<ParamActor>> ActorFactory::Build(const cluster::ActorKey& key,
                                                                bool awaiting_restore) const {
  absl::StatusOr<InitialActorState> initial = model_->Initial(key);
  if (!initial.ok()) return initial.status();
  auto state =
      ParamState::Create(backend_, std::move(initial->segments), initial->values, config_.micro_batches, config_.adam);
  if (!state.ok()) return state.status();
  return std::make_shared<ParamActor>(*executor_, initial->identity, config_.model, *std::move(state), registry_,
                                      config_.checkpoint_every, awaiting_restore, config_.limits.parking, device_);
}

}  // namespace sy::expert_host
