// The actors a model has, as an expert host names them: every expert of every
// Switch layer and every dense parameter shard. Coordinator keys name an expert by
// Switch-layer index while requests name it by model layer; this maps requests to
// keys (through cluster/switch_layers.h), checks keys, gives each actor's size and initial state (the full model's init
// from the seed, restricted to the actor's slices, so a host's actors start exactly
// as the in-process model), and says where the static placement puts each actor.
// Immutable after construction: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gpu/model/config.h"
#include "gpu/model/params.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/placement.h"
#include "services/expert_host/param_actor.h"
#include "services/expert_host/param_state.h"

namespace sy::expert_host {

// What a new actor starts from: who it is, its gradient-norm segments and their
// initial values back to back.
struct InitialActorState {
  ActorIdentity identity;
  std::vector<StateSegment> segments;
  std::vector<float> values;
};

class ModelActors {
 public:
  ModelActors(const gpu::ModelConfig& model, uint64_t seed, int num_hosts);

  // InvalidArgument when `key` names no actor of this model.
  absl::Status CheckKey(const cluster::ActorKey& key) const;
  // The key of model layer `layer`'s expert `expert`; nullopt when the layer is not a
  // Switch layer of the model or the expert is out of range.
  std::optional<cluster::ActorKey> ExpertKey(uint32_t layer, uint32_t expert) const;
  // Elements of the actor's parameters (the size of one gradient contribution).
  int64_t Size(const cluster::ActorKey& key) const;
  // The largest Size of any actor of the model.
  int64_t LargestSize() const;
  // Bytes of an actor's whole checkpointed state (weights, Adam m and v: ParamState::SaveState),
  // for an actor of `size` elements or for `key`.
  static int64_t StateBytesOfSize(int64_t size) { return 3 * size * static_cast<int64_t>(sizeof(float)); }
  int64_t StateBytes(const cluster::ActorKey& key) const { return StateBytesOfSize(Size(key)); }
  size_t num_shards() const { return shard_params_.size(); }
  // The actors the static placement puts on host `host_index`, in key order.
  std::vector<cluster::ActorKey> StaticShare(int host_index) const;
  // The static placement (where an actor lives before any coordinator table).
  const cluster::StaticPlacement& static_placement() const { return static_placement_; }
  // `key`'s identity, segments and initial values; InvalidArgument for an unknown key.
  absl::StatusOr<InitialActorState> Initial(const cluster::ActorKey& key) const;

 private:
  gpu::ModelConfig model_;
  uint64_t seed_;
  cluster::StaticPlacement static_placement_;
  std::vector<gpu::ParamInfo> infos_;
  std::vector<uint32_t> shard_params_;  // dense shard -> canonical parameter index
};

}  // namespace sy::expert_host
