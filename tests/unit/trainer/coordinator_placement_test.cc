// CoordinatorPlacement: the coordinator's initial table answers exactly as the
// static rule (so a run with the coordinator trains the same weights), a moved
// actor is followed, and a table that does not fit the model is refused.
#include "services/trainer/coordinator_link.h"

#include <gtest/gtest.h>

#include "gpu/model/params.h"
#include "services/coordinator/placement.h"

namespace sy::trainer {
namespace {

gpu::ModelConfig ThreeLayersTwoSwitch() {
  gpu::ModelConfig config;
  config.layers = 4;
  config.d_model = 16;
  config.heads = 2;
  config.d_ff = 32;
  config.experts = 3;
  config.moe_every = 2;  // layers 1 and 3 are Switch layers
  config.context = 8;
  return config;
}

int DenseShards(const gpu::ModelConfig& config) {
  return static_cast<int>(DenseShardParams(gpu::ParamInfos(config)).size());
}

coordinator::DecodedTable InitialTable(const gpu::ModelConfig& config, int hosts) {
  coordinator::ModelShape shape{static_cast<uint32_t>(SwitchLayerCount(config)),
                                static_cast<uint32_t>(config.experts),
                                static_cast<uint32_t>(DenseShards(config))};
  coordinator::PlacementTable table(shape);
  std::vector<std::string> names;
  for (int h = 0; h < hosts; ++h) names.push_back("host-" + std::to_string(h));
  EXPECT_TRUE(table.Initialize(names).ok());
  coordinator::DecodedTable decoded;
  decoded.epoch = table.epoch();
  decoded.shape = shape;
  decoded.entries = table.entries();
  return decoded;
}

TEST(CoordinatorPlacementTest, InitialTableEqualsTheStaticRule) {
  const gpu::ModelConfig config = ThreeLayersTwoSwitch();
  ASSERT_EQ(SwitchLayerCount(config), 2);
  for (int hosts : {1, 2, 3, 5}) {
    auto placement = CoordinatorPlacement::Create(config, DenseShards(config), hosts, InitialTable(config, hosts));
    ASSERT_TRUE(placement.ok()) << placement.status();
    StaticPlacement rule(config, hosts);
    EXPECT_GT((*placement)->epoch(), 0u);
    for (int l = 0; l < config.layers; ++l) {
      if (!config.IsSwitchLayer(l)) continue;
      for (int e = 0; e < config.experts; ++e) {
        EXPECT_EQ((*placement)->HostOfExpert(l, e), rule.HostOfExpert(l, e)) << hosts << " hosts, " << l << "/" << e;
      }
    }
    for (int s = 0; s < DenseShards(config); ++s) {
      EXPECT_EQ((*placement)->HostOfDenseShard(s), rule.HostOfDenseShard(s)) << hosts << " hosts, shard " << s;
    }
  }
}

TEST(CoordinatorPlacementTest, FollowsAMovedActor) {
  const gpu::ModelConfig config = ThreeLayersTwoSwitch();
  coordinator::DecodedTable table = InitialTable(config, 2);
  table.entries[coordinator::ActorKey::Expert(1, 2)] = {"host-1"};  // Switch layer 1 = model layer 3
  table.entries[coordinator::ActorKey::Dense(0)] = {"host-1"};
  auto placement = CoordinatorPlacement::Create(config, DenseShards(config), 2, table);
  ASSERT_TRUE(placement.ok()) << placement.status();
  EXPECT_EQ((*placement)->HostOfExpert(3, 2), 1);
  EXPECT_EQ((*placement)->HostOfDenseShard(0), 1);
}

TEST(CoordinatorPlacementTest, RefusesATableThatDoesNotFit) {
  const gpu::ModelConfig config = ThreeLayersTwoSwitch();
  const int shards = DenseShards(config);
  coordinator::DecodedTable table = InitialTable(config, 2);
  EXPECT_EQ(CoordinatorPlacement::Create(config, shards + 1, 2, table).status().code(),
            absl::StatusCode::kInvalidArgument);
  coordinator::DecodedTable foreign = table;
  foreign.entries[coordinator::ActorKey::Expert(0, 0)] = {"worker-7"};
  EXPECT_EQ(CoordinatorPlacement::Create(config, shards, 2, foreign).status().code(),
            absl::StatusCode::kInvalidArgument);
  coordinator::DecodedTable beyond = table;
  beyond.entries[coordinator::ActorKey::Expert(0, 0)] = {"host-2"};  // only host-0 and host-1 run
  auto refused = CoordinatorPlacement::Create(config, shards, 2, beyond);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("host-2"), absl::string_view::npos) << refused.status();
  coordinator::DecodedTable missing = table;
  missing.entries.erase(coordinator::ActorKey::Dense(1));
  EXPECT_EQ(CoordinatorPlacement::Create(config, shards, 2, missing).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sy::trainer
