// The two numberings of the layers that hold experts, and the one place that converts
// between them. The model layer (0..layers-1) is what the model and the data plane use:
// parameter names ("layer3.expert_w_in"), dropout and jitter keys, BucketId.layer,
// Placement::HostOfExpert. The Switch-layer index (0..SwitchLayerCount-1, 0 being the
// model's first Switch layer) is what the control plane uses: ActorKey.switch_layer,
// placement tables, checkpoints, load reports, ActorStatus. With moe_every = 2 and
// 4 layers, model layers 1 and 3 are Switch layers 0 and 1. Pure functions.
#pragma once

#include <optional>

#include "gpu/model/config.h"

namespace sy::cluster {

// Number of Switch layers of `config`.
int SwitchLayerCount(const gpu::ModelConfig& config);
// The Switch-layer index of model layer `model_layer`; nullopt when that layer is out
// of range or is not a Switch layer.
std::optional<int> SwitchLayerOf(int model_layer, const gpu::ModelConfig& config);
// The model layer of Switch layer `switch_layer`; nullopt when it is out of range.
std::optional<int> ModelLayerOf(int switch_layer, const gpu::ModelConfig& config);

}  // namespace sy::cluster
