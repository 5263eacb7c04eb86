// CoordinatorPlacement: the coordinator's initial table answers exactly as the
// static rule (so a run with the coordinator trains the same weights), a moved
// actor is followed, a replicated expert keeps every replica (micro-batch m goes
// to replica m % n, and every replica host gets the step messages), and a table
// that does not fit the model is refused.
#include "services/cluster/coordinator_link.h"

#include <gtest/gtest.h>

#include "gpu/model/params.h"
#include "services/cluster/placement_table.h"
#include "services/cluster/switch_layers.h"

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
  return static_cast<int>(cluster::DenseShardParams(gpu::ParamInfos(config)).size());
}

cluster::DecodedTable InitialTable(const gpu::ModelConfig& config, int hosts) {
  cluster::ModelShape shape{static_cast<uint32_t>(cluster::SwitchLayerCount(config)),
                                static_cast<uint32_t>(config.experts),
                                static_cast<uint32_t>(DenseShards(config))};
  cluster::PlacementTable table(shape);
  std::vector<std::string> names;
  for (int h = 0; h < hosts; ++h) names.push_back("host-" + std::to_string(h));
  EXPECT_TRUE(table.Initialize(names).ok());
  cluster::DecodedTable decoded;
  decoded.epoch = table.epoch();
  decoded.shape = shape;
  decoded.entries = table.entries();
  return decoded;
}

TEST(CoordinatorPlacementTest, InitialTableEqualsTheStaticRule) {
  const gpu::ModelConfig config = ThreeLayersTwoSwitch();
  ASSERT_EQ(cluster::SwitchLayerCount(config), 2);
  for (int hosts : {1, 2, 3, 5}) {
    auto placement = cluster::CoordinatorPlacement::Create(config, DenseShards(config), hosts, InitialTable(config, hosts));
    ASSERT_TRUE(placement.ok()) << placement.status();
    cluster::StaticPlacement rule(config, hosts);
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
  cluster::DecodedTable table = InitialTable(config, 2);
  table.entries[cluster::ActorKey::Expert(1, 2)] = {"host-1"};  // Switch layer 1 = model layer 3
  table.entries[cluster::ActorKey::Dense(0)] = {"host-1"};
  auto placement = cluster::CoordinatorPlacement::Create(config, DenseShards(config), 2, table);
  ASSERT_TRUE(placement.ok()) << placement.status();
  EXPECT_EQ((*placement)->HostOfExpert(3, 2), 1);
  EXPECT_EQ((*placement)->HostOfDenseShard(0), 1);
}

TEST(CoordinatorPlacementTest, ReplicatedExpertKeepsEveryReplicaAndSplitsMicroBatches) {
  const gpu::ModelConfig config = ThreeLayersTwoSwitch();
  const int shards = DenseShards(config);
  cluster::DecodedTable table = InitialTable(config, 2);  // host-2 holds nothing of its own
  table.entries[cluster::ActorKey::Expert(0, 1)] = {"host-1", "host-2"};  // model layer 1
  table.entries[cluster::ActorKey::Expert(1, 0)] = {"host-2", "host-0", "host-1"};  // model layer 3
  table.entries[cluster::ActorKey::Dense(1)] = {"host-1", "host-0"};
  auto placement = cluster::CoordinatorPlacement::Create(config, shards, 3, table);
  ASSERT_TRUE(placement.ok()) << placement.status();
  const cluster::CoordinatorPlacement& p = **placement;
  EXPECT_EQ(p.ExpertReplicas(1, 1), (std::vector<int>{1, 2}));
  EXPECT_EQ(p.ExpertReplicas(3, 0), (std::vector<int>{2, 0, 1}));
  EXPECT_EQ(p.HostOfExpert(1, 1), 1) << "the first replica";
  EXPECT_EQ(p.HostOfExpert(3, 0), 2);
  for (int64_t m = 0; m < 7; ++m) {
    EXPECT_EQ(p.HostOfExpertMicroBatch(1, 1, 1, m), m % 2 == 0 ? 1 : 2) << "micro-batch " << m;
    EXPECT_EQ(p.HostOfExpertMicroBatch(1, 3, 0, m), (std::vector<int>{2, 0, 1})[static_cast<size_t>(m % 3)])
        << "micro-batch " << m;
    EXPECT_EQ(p.HostOfExpertMicroBatch(1, 1, 0, m), p.HostOfExpert(1, 0)) << "unreplicated: always its one host";
  }
  EXPECT_EQ(p.ExpertReplicas(1, 0), (std::vector<int>{p.HostOfExpert(1, 0)}));
  EXPECT_EQ(p.HostOfDenseShard(1), 1) << "a replicated dense shard is served by its first host";
  EXPECT_EQ(cluster::HostsInUse(p, config, shards, 1), (std::vector<int>{0, 1, 2})) << "host-2 holds only replicas";

  cluster::LivePlacement live(std::make_unique<cluster::StaticPlacement>(config, 3));
  EXPECT_EQ(live.ExpertReplicas(1, 1), (std::vector<int>{live.HostOfExpert(1, 1)})) << "the static rule: one host";
  live.Replace(*std::move(placement));
  EXPECT_EQ(live.ExpertReplicas(3, 0), (std::vector<int>{2, 0, 1}));
  EXPECT_EQ(live.HostOfExpertMicroBatch(1, 3, 0, 4), 0);

  table.entries[cluster::ActorKey::Expert(0, 1)] = {"host-1"};
  table.entries[cluster::ActorKey::Expert(1, 0)] = {"host-0"};
  auto unreplicated = cluster::CoordinatorPlacement::Create(config, shards, 3, table);
  ASSERT_TRUE(unreplicated.ok()) << unreplicated.status();
  EXPECT_EQ(cluster::HostsInUse(**unreplicated, config, shards, 1), (std::vector<int>{0, 1}));
}

// A table made by live moves after step 10: a trainer that takes it early (say during
// step 9) must still send steps up to 10 to the holders before the moves (the
// destination serves only from step 11, and would wait for the state forever), and
// the step messages of those steps to the source even when it holds nothing after.
TEST(CoordinatorPlacementTest, ALiveMoveTableRoutesStepsUpToTheBoundaryToTheHoldersBefore) {
  const gpu::ModelConfig config = ThreeLayersTwoSwitch();
  const int shards = DenseShards(config);
  cluster::DecodedTable table = InitialTable(config, 3);  // host-2 starts with its share
  // Drain host-2 live: everything on it moves to host-0; one expert also replicates to host-1.
  std::vector<cluster::LiveMove> live;
  for (auto& [actor, hosts] : table.entries) {
    if (hosts[0] != "host-2") continue;
    hosts[0] = "host-0";
    live.push_back({{actor, "host-2", "host-0", false}, 10});
  }
  ASSERT_FALSE(live.empty());
  table.entries[cluster::ActorKey::Expert(0, 0)].push_back("host-1");
  live.push_back({{cluster::ActorKey::Expert(0, 0), table.entries[cluster::ActorKey::Expert(0, 0)][0], "host-1", true}, 10});
  table.live_moves = live;
  auto placement = cluster::CoordinatorPlacement::Create(config, shards, 3, table);
  ASSERT_TRUE(placement.ok()) << placement.status();
  const cluster::CoordinatorPlacement& p = **placement;
  EXPECT_EQ(cluster::HostsInUse(p, config, shards, 10), (std::vector<int>{0, 1, 2})) << "host-2 closes step 10";
  EXPECT_EQ(cluster::HostsInUse(p, config, shards, 11), (std::vector<int>{0, 1})) << "and is drained after it";
  for (const cluster::LiveMove& m : live) {
    if (m.move.replicate) continue;
    const cluster::ActorKey& a = m.move.actor;
    if (a.dense) {
      EXPECT_EQ(p.HostOfDenseShardAt(10, static_cast<int>(a.shard)), 2) << a.ToString();
      EXPECT_EQ(p.HostOfDenseShardAt(11, static_cast<int>(a.shard)), 0) << a.ToString();
      EXPECT_EQ(p.HostOfDenseShard(static_cast<int>(a.shard)), 0) << "the table itself: after the moves";
    } else {
      const int layer = static_cast<int>(a.switch_layer) * 2 + 1;
      EXPECT_EQ(p.ExpertReplicasAt(10, layer, static_cast<int>(a.expert))[0], 2) << a.ToString();
      EXPECT_EQ(p.ExpertReplicasAt(11, layer, static_cast<int>(a.expert))[0], 0) << a.ToString();
    }
  }
  const std::vector<int> before = p.ExpertReplicasAt(10, 1, 0), after = p.ExpertReplicasAt(11, 1, 0);
  ASSERT_EQ(before.size(), 1u) << "the replica starts serving after the boundary";
  EXPECT_EQ(after, (std::vector<int>{before[0] == 2 ? 0 : before[0], 1}));
  for (int64_t m = 0; m < 4; ++m) EXPECT_EQ(p.HostOfExpertMicroBatch(10, 1, 0, m), before[0]) << m;
  EXPECT_EQ(p.HostOfExpertMicroBatch(11, 1, 0, 1), 1) << "micro-batch 1 of 2 replicas";

  table.live_moves.push_back({{cluster::ActorKey::Dense(0), "host-2", "host-1", false}, 10});
  EXPECT_EQ(cluster::CoordinatorPlacement::Create(config, shards, 3, table).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "a live move whose destination does not hold the actor";
}

TEST(CoordinatorPlacementTest, RefusesABadReplica) {
  const gpu::ModelConfig config = ThreeLayersTwoSwitch();
  const int shards = DenseShards(config);
  const cluster::DecodedTable table = InitialTable(config, 2);
  for (const auto& [replicas, named] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"host-0", "host-2"}, "host-2"},        // only host-0 and host-1 run
           {{"host-1", "worker-7"}, "worker-7"},
           {{"host-1", "host-1"}, "two replicas"},
           {{}, "on no host"}}) {
    cluster::DecodedTable bad = table;
    bad.entries[cluster::ActorKey::Expert(1, 2)] = replicas;
    auto refused = cluster::CoordinatorPlacement::Create(config, shards, 2, bad);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << named;
    EXPECT_NE(refused.status().message().find(named), absl::string_view::npos) << refused.status();
  }
}

TEST(CoordinatorPlacementTest, RefusesATableThatDoesNotFit) {
  const gpu::ModelConfig config = ThreeLayersTwoSwitch();
  const int shards = DenseShards(config);
  cluster::DecodedTable table = InitialTable(config, 2);
  EXPECT_EQ(cluster::CoordinatorPlacement::Create(config, shards + 1, 2, table).status().code(),
            absl::StatusCode::kInvalidArgument);
  cluster::DecodedTable foreign = table;
  foreign.entries[cluster::ActorKey::Expert(0, 0)] = {"worker-7"};
  EXPECT_EQ(cluster::CoordinatorPlacement::Create(config, shards, 2, foreign).status().code(),
            absl::StatusCode::kInvalidArgument);
  cluster::DecodedTable beyond = table;
  beyond.entries[cluster::ActorKey::Expert(0, 0)] = {"host-2"};  // only host-0 and host-1 run
  auto refused = cluster::CoordinatorPlacement::Create(config, shards, 2, beyond);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("host-2"), absl::string_view::npos) << refused.status();
  cluster::DecodedTable missing = table;
  missing.entries.erase(cluster::ActorKey::Dense(1));
  EXPECT_EQ(cluster::CoordinatorPlacement::Create(config, shards, 2, missing).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sy::trainer
