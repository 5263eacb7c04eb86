// The model's actors as an expert host names them (see model_actors.h).
#include "services/expert_host/model_actors.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "gpu/model/expert.h"
#include "gpu/model/model.h"
#include "services/cluster/switch_layers.h"

namespace sy::expert_host {
namespace {

// Initial values of parameter `index`'s elements [begin, end) appended to out.
void AppendInit(const std::vector<gpu::ParamInfo>& infos, uint32_t index, uint64_t seed, int64_t begin, int64_t end,
                std::vector<float>* out) {
  const size_t at = out->size();
  out->resize(at + static_cast<size_t>(end - begin));
  gpu::InitParamRange(infos[index], index, seed, begin, end, out->data() + at);
}

}  // namespace

ModelActors::ModelActors(const gpu::ModelConfig& model, uint64_t seed, int num_hosts)
    : model_(model),
      seed_(seed),
      static_placement_(model, num_hosts),
      infos_(gpu::ParamInfos(model)),
      shard_params_(cluster::DenseShardParams(infos_)) {}

absl::Status ModelActors::CheckKey(const cluster::ActorKey& key) const {
  const int switch_layers = cluster::SwitchLayerCount(model_);
  const bool known = key.dense ? key.shard < shard_params_.size()
                               : key.switch_layer < static_cast<uint32_t>(switch_layers) &&
                                     key.expert < static_cast<uint32_t>(model_.experts);
  if (known) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("actor ", key.ToString(), " is not part of this model (",
                                                 switch_layers, " Switch layers of ", model_.experts,
                                                 " experts, ", shard_params_.size(), " dense shards)"));
}

std::optional<cluster::ActorKey> ModelActors::ExpertKey(uint32_t layer, uint32_t expert) const {
  if (layer >= static_cast<uint32_t>(model_.layers) || expert >= static_cast<uint32_t>(model_.experts)) {
    return std::nullopt;
  }
  const std::optional<int> switch_layer = cluster::SwitchLayerOf(static_cast<int>(layer), model_);
  if (!switch_layer.has_value()) return std::nullopt;
  return cluster::ActorKey::Expert(static_cast<uint32_t>(*switch_layer), expert);
}

int64_t ModelActors::Size(const cluster::ActorKey& key) const {
  if (key.dense) return infos_[shard_params_[key.shard]].numel;
  return gpu::ExpertLayout(model_).size();
}

int64_t ModelActors::LargestSize() const {
  int64_t largest = cluster::SwitchLayerCount(model_) > 0 ? gpu::ExpertLayout(model_).size() : 0;
  for (uint32_t param : shard_params_) largest = std::max(largest, infos_[param].numel);
  return largest;
}

std::vector<cluster::ActorKey> ModelActors::StaticShare(int host_index) const {
  std::vector<cluster::ActorKey> share;
  for (int s = 0; s < cluster::SwitchLayerCount(model_); ++s) {
    const int layer = cluster::ModelLayerOf(s, model_).value();
    for (int e = 0; e < model_.experts; ++e) {
      if (static_placement_.HostOfExpert(layer, e) != host_index) continue;
      share.push_back(cluster::ActorKey::Expert(static_cast<uint32_t>(s), static_cast<uint32_t>(e)));
    }
  }
  for (size_t s = 0; s < shard_params_.size(); ++s) {
    if (static_placement_.HostOfDenseShard(static_cast<int>(s)) != host_index) continue;
    share.push_back(cluster::ActorKey::Dense(static_cast<uint32_t>(s)));
  }
  return share;
}

absl::StatusOr<InitialActorState> ModelActors::Initial(const cluster::ActorKey& key) const {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  InitialActorState state;
  if (key.dense) {
    const uint32_t index = shard_params_[key.shard];
    AppendInit(infos_, index, seed_, 0, infos_[index].numel, &state.values);
    state.segments.push_back({index, -1, infos_[index].numel, infos_[index].decays});
    state.identity = ActorIdentity{false, 0, 0, 0, static_cast<int>(key.shard)};
    return state;
  }
  const int s = static_cast<int>(key.switch_layer), e = static_cast<int>(key.expert);
  const int l = cluster::ModelLayerOf(s, model_).value();
  const std::string p = absl::StrCat("layer", l, ".");
  // The expert's block (gpu::ExpertLayout), expert e's slice of each stacked parameter.
  const gpu::ExpertLayout layout(model_);
  for (const gpu::ExpertPart& part : layout.parts()) {
    const auto info =
        std::find_if(infos_.begin(), infos_.end(), [&](const gpu::ParamInfo& i) { return i.name == p + part.name; });
    if (info == infos_.end()) return absl::InternalError(absl::StrCat("model has no parameter ", p, part.name));
    const uint32_t index = static_cast<uint32_t>(info - infos_.begin());
    AppendInit(infos_, index, seed_, e * part.numel, (e + 1) * part.numel, &state.values);
    state.segments.push_back({index, e, part.numel, info->decays});
  }
  state.identity = ActorIdentity{true, l, s, e, 0};
  return state;
}

}  // namespace sy::expert_host
