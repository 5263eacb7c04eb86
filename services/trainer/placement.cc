// The static placement rule (see placement.h).
#include "services/trainer/placement.h"

#include "gpu/model/optimizer.h"

namespace sy::trainer {

StaticPlacement::StaticPlacement(const gpu::ModelConfig& config, int num_hosts)
    : config_(config), num_hosts_(num_hosts < 1 ? 1 : num_hosts) {}

int StaticPlacement::HostOfExpert(int layer, int expert) const {
  int64_t switch_before = 0;
  for (int l = 0; l < layer; ++l) switch_before += config_.IsSwitchLayer(l) ? 1 : 0;
  return static_cast<int>((switch_before * config_.experts + expert) % num_hosts_);
}

int StaticPlacement::HostOfDenseShard(int shard) const { return shard % num_hosts_; }

std::vector<uint32_t> DenseShardParams(const std::vector<gpu::ParamInfo>& infos) {
  std::vector<uint32_t> shards;
  for (size_t i = 0; i < infos.size(); ++i) {
    if (!gpu::IsExpertParam(infos[i])) shards.push_back(static_cast<uint32_t>(i));
  }
  return shards;
}

}  // namespace sy::trainer
