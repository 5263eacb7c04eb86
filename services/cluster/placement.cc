// The static placement rule (see placement.h).
#include "services/cluster/placement.h"

#include "gpu/model/optimizer.h"
#include "services/cluster/switch_layers.h"

namespace sy::cluster {

StaticPlacement::StaticPlacement(const gpu::ModelConfig& config, int num_hosts)
    : config_(config), num_hosts_(num_hosts < 1 ? 1 : num_hosts) {}

int StaticPlacement::HostOfExpert(int layer, int expert) const {
  const int64_t switch_layer = SwitchLayerOf(layer, config_).value();
  return static_cast<int>((switch_layer * config_.experts + expert) % num_hosts_);
}

int StaticPlacement::HostOfDenseShard(int shard) const { return shard % num_hosts_; }

int Placement::HostOfExpertMicroBatch(uint64_t step, int layer, int expert, int64_t micro_batch) const {
  const std::vector<int> replicas = ExpertReplicasAt(step, layer, expert);
  const int64_t n = static_cast<int64_t>(replicas.size());
  return replicas[static_cast<size_t>((micro_batch % n + n) % n)];
}

std::vector<uint32_t> DenseShardParams(const std::vector<gpu::ParamInfo>& infos) {
  std::vector<uint32_t> shards;
  for (size_t i = 0; i < infos.size(); ++i) {
    if (!gpu::IsExpertParam(infos[i])) shards.push_back(static_cast<uint32_t>(i));
  }
  return shards;
}

LivePlacement::LivePlacement(std::unique_ptr<const Placement> initial) : current_(std::move(initial)) {}

void LivePlacement::Replace(std::unique_ptr<const Placement> next) {
  absl::MutexLock lock(&mu_);
  current_ = std::move(next);
}

std::shared_ptr<const Placement> LivePlacement::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

std::vector<int> HostsInUse(const Placement& placement, const gpu::ModelConfig& config, int num_dense_shards,
                            uint64_t step) {
  std::vector<bool> used(static_cast<size_t>(placement.num_hosts()), false);
  auto mark = [&used](int h) {
    if (h >= 0 && h < static_cast<int>(used.size())) used[static_cast<size_t>(h)] = true;
  };
  for (int l = 0; l < config.layers; ++l) {
    if (!config.IsSwitchLayer(l)) continue;
    for (int e = 0; e < config.experts; ++e) {
      for (int h : placement.ExpertReplicasAt(step, l, e)) mark(h);
    }
  }
  for (int s = 0; s < num_dense_shards; ++s) mark(placement.HostOfDenseShardAt(step, s));
  std::vector<int> hosts;
  for (size_t h = 0; h < used.size(); ++h) {
    if (used[h]) hosts.push_back(static_cast<int>(h));
  }
  return hosts;
}

}  // namespace sy::cluster
