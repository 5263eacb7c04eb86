// Model layer <-> Switch-layer index (see switch_layers.h).
#include "services/cluster/switch_layers.h"

namespace sy::cluster {

int SwitchLayerCount(const gpu::ModelConfig& config) {
  int n = 0;
  for (int l = 0; l < config.layers; ++l) n += config.IsSwitchLayer(l) ? 1 : 0;
  return n;
}

std::optional<int> SwitchLayerOf(int model_layer, const gpu::ModelConfig& config) {
  if (model_layer < 0 || model_layer >= config.layers || !config.IsSwitchLayer(model_layer)) return std::nullopt;
  int switch_layer = 0;
  for (int l = 0; l < model_layer; ++l) switch_layer += config.IsSwitchLayer(l) ? 1 : 0;
  return switch_layer;
}

std::optional<int> ModelLayerOf(int switch_layer, const gpu::ModelConfig& config) {
  if (switch_layer < 0) return std::nullopt;
  int seen = 0;
  for (int l = 0; l < config.layers; ++l) {
    if (!config.IsSwitchLayer(l)) continue;
    if (seen == switch_layer) return l;
    ++seen;
  }
  return std::nullopt;
}

}  // namespace sy::cluster
