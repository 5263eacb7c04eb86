// Placement table: the static round-robin rule, failure/join/drain re-placement,
// planned moves, epochs and the stale-epoch status.
#include "services/cluster/placement_table.h"

#include <algorithm>
#include <map>

#include <gtest/gtest.h>

namespace sy::coordinator {
namespace {

const cluster::ModelShape kShape{2, 4, 3};  // 8 experts + 3 dense shards = 11 actors

std::map<std::string, size_t> Counts(const cluster::PlacementTable& t) {
  std::map<std::string, size_t> c;
  for (const auto& h : t.hosts()) c[h] = t.ActorsOn(h).size();
  return c;
}

TEST(PlacementTest, NaturalOrderPutsHost2BeforeHost10) {
  EXPECT_TRUE(cluster::NaturalLess("host-2", "host-10"));
  EXPECT_FALSE(cluster::NaturalLess("host-10", "host-2"));
  EXPECT_TRUE(cluster::NaturalLess("host-a", "host-b"));
  EXPECT_FALSE(cluster::NaturalLess("host-1", "host-1"));
  EXPECT_TRUE(cluster::NaturalLess("h", "h0"));
}

TEST(PlacementTest, InitialPlacementIsTheStaticRoundRobinRule) {
  EXPECT_EQ(cluster::InitialHostIndex(cluster::ActorKey::Expert(0, 0), kShape, 3), 0u);
  EXPECT_EQ(cluster::InitialHostIndex(cluster::ActorKey::Expert(0, 3), kShape, 3), 0u);
  EXPECT_EQ(cluster::InitialHostIndex(cluster::ActorKey::Expert(1, 0), kShape, 3), 1u);  // g = 4
  EXPECT_EQ(cluster::InitialHostIndex(cluster::ActorKey::Expert(1, 3), kShape, 3), 1u);  // g = 7
  EXPECT_EQ(cluster::InitialHostIndex(cluster::ActorKey::Dense(2), kShape, 3), 2u);
  cluster::PlacementTable table(kShape);
  EXPECT_FALSE(table.initialized());
  EXPECT_EQ(table.Initialize({}).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(table.Initialize({"h0", "h1", "h2"}).ok());
  EXPECT_EQ(table.epoch(), 1u);
  EXPECT_EQ(table.entries().size(), 11u);
  EXPECT_EQ(table.HostsOf(cluster::ActorKey::Expert(1, 1)), std::vector<std::string>{"h2"});  // g = 5
  EXPECT_EQ(table.HostsOf(cluster::ActorKey::Dense(1)), std::vector<std::string>{"h1"});
  EXPECT_TRUE(table.HostsOf(cluster::ActorKey::Expert(5, 0)).empty());
}

TEST(PlacementTest, FailedHostActorsSpreadOverSurvivorsLeastLoadedFirst) {
  cluster::PlacementTable table(kShape);
  ASSERT_TRUE(table.Initialize({"h0", "h1", "h2"}).ok());  // counts 4, 4, 3
  const auto on_h1 = table.ActorsOn("h1");
  auto moves = table.RemoveHost("h1");
  ASSERT_EQ(moves.size(), on_h1.size());
  EXPECT_EQ(table.epoch(), 2u);
  EXPECT_EQ(moves[0].to, "h2");  // h2 had fewer actors
  for (const cluster::Move& m : moves) EXPECT_EQ(m.from, "h1");
  EXPECT_TRUE(table.ActorsOn("h1").empty());
  auto counts = Counts(table);
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_LE(std::max(counts["h0"], counts["h2"]) - std::min(counts["h0"], counts["h2"]), 1u);
  EXPECT_TRUE(table.RemoveHost("h1").empty());  // already gone: no change, no new epoch
  EXPECT_EQ(table.epoch(), 2u);
}

TEST(PlacementTest, JoinMovesActorsUntilBalancedAndDrainEmptiesAHost) {
  cluster::PlacementTable table(kShape);
  ASSERT_TRUE(table.Initialize({"h0", "h1"}).ok());  // 6, 5
  auto moves = table.AddHost("h2");
  EXPECT_EQ(table.epoch(), 2u);
  for (const cluster::Move& m : moves) EXPECT_EQ(m.to, "h2");
  auto counts = Counts(table);
  EXPECT_EQ(counts["h2"], 3u);  // 11 actors over 3 hosts: 4, 4, 3
  EXPECT_EQ(counts["h0"] + counts["h1"], 8u);
  EXPECT_TRUE(table.AddHost("h2").empty());
  moves = table.DrainHost("h0");
  EXPECT_FALSE(moves.empty());
  EXPECT_TRUE(table.ActorsOn("h0").empty());
  EXPECT_EQ(table.hosts(), (std::vector<std::string>{"h1", "h2"}));
  EXPECT_EQ(table.epoch(), 3u);
}

TEST(PlacementTest, ReplicaOfAFailedHostIsDroppedNotMoved) {
  cluster::PlacementTable table(kShape);
  ASSERT_TRUE(table.Initialize({"h0", "h1"}).ok());
  ASSERT_TRUE(table.Apply({{cluster::ActorKey::Expert(0, 0), "h0", "h1", true}}).ok());
  EXPECT_EQ(table.HostsOf(cluster::ActorKey::Expert(0, 0)), (std::vector<std::string>{"h0", "h1"}));
  auto moves = table.RemoveHost("h1");
  EXPECT_EQ(table.HostsOf(cluster::ActorKey::Expert(0, 0)), std::vector<std::string>{"h0"});
  auto dropped = std::find_if(moves.begin(), moves.end(), [](const cluster::Move& m) { return m.actor == cluster::ActorKey::Expert(0, 0); });
  ASSERT_NE(dropped, moves.end());
  EXPECT_EQ(dropped->to, "");
}

// --redundancy 2: every actor on its static host and the next one; a dead host then
// costs only replicas (no actor needs a new holder), and one host holds everything once.
TEST(PlacementTest, RedundancyPlacesEveryActorOnDistinctHostsAndSurvivesAFailure) {
  cluster::PlacementTable table(kShape, 2);
  ASSERT_TRUE(table.Initialize({"h0", "h1", "h2"}).ok());
  for (const auto& [actor, holders] : table.entries()) {
    ASSERT_EQ(holders.size(), 2u) << actor.ToString();
    const size_t first = cluster::InitialHostIndex(actor, kShape, 3);
    EXPECT_EQ(holders[0], "h" + std::to_string(first)) << "the first holder is the static rule's";
    EXPECT_EQ(holders[1], "h" + std::to_string((first + 1) % 3)) << actor.ToString();
  }
  const std::vector<cluster::Move> moves = table.RemoveHost("h1");
  ASSERT_FALSE(moves.empty());
  for (const cluster::Move& m : moves) EXPECT_TRUE(m.to.empty()) << m.actor.ToString() << " needed a new holder";
  size_t single = 0;
  for (const auto& [actor, holders] : table.entries()) {
    EXPECT_EQ(std::count(holders.begin(), holders.end(), "h1"), 0) << actor.ToString();
    if (holders.size() == 1) ++single;
  }
  EXPECT_EQ(single, moves.size()) << "exactly the actors h1 held lost a copy";

  cluster::PlacementTable alone(kShape, 2);
  ASSERT_TRUE(alone.Initialize({"h0"}).ok());
  for (const auto& [actor, holders] : alone.entries()) EXPECT_EQ(holders, (std::vector<std::string>{"h0"}));
}

TEST(PlacementTest, ApplyIsAllOrNothing) {
  cluster::PlacementTable table(kShape);
  ASSERT_TRUE(table.Initialize({"h0", "h1"}).ok());
  const auto before = table.entries();
  // The second move is wrong (E(0,1) is on h1): nothing changes.
  EXPECT_EQ(table.Apply({{cluster::ActorKey::Expert(0, 0), "h0", "h1", false}, {cluster::ActorKey::Expert(0, 1), "h0", "h1", false}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(table.Apply({{cluster::ActorKey::Expert(0, 0), "h0", "h9", false}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(table.Apply({{cluster::ActorKey::Expert(9, 0), "h0", "h1", false}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(table.entries(), before);
  EXPECT_EQ(table.epoch(), 1u);
  ASSERT_TRUE(table.Apply({{cluster::ActorKey::Expert(0, 0), "h0", "h1", false}}).ok());
  EXPECT_EQ(table.HostsOf(cluster::ActorKey::Expert(0, 0)), std::vector<std::string>{"h1"});
  EXPECT_EQ(table.epoch(), 2u);
}

TEST(PlacementTest, StaleEpochIsAbortedWithTheCurrentEpoch) {
  cluster::PlacementTable table(kShape);
  ASSERT_TRUE(table.Initialize({"h0", "h1"}).ok());
  table.AddHost("h2");
  EXPECT_TRUE(table.CheckEpoch(2).ok());
  absl::Status stale = table.CheckEpoch(1);
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(cluster::CurrentEpochFrom(stale), 2u);
  EXPECT_EQ(table.CheckEpoch(7).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cluster::CurrentEpochFrom(absl::OkStatus()), 0u);
}

TEST(PlacementTest, RestoreChecksTheShape) {
  cluster::PlacementTable table(kShape);
  ASSERT_TRUE(table.Initialize({"h0", "h1"}).ok());
  cluster::PlacementTable copy(kShape);
  ASSERT_TRUE(copy.Restore(9, table.entries()).ok());
  EXPECT_EQ(copy.epoch(), 9u);
  EXPECT_EQ(copy.hosts(), table.hosts());
  auto missing = table.entries();
  missing.erase(cluster::ActorKey::Dense(0));
  cluster::PlacementTable other(kShape);
  EXPECT_EQ(other.Restore(3, missing).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(other.initialized());
}

}  // namespace
}  // namespace sy::coordinator
