// The coordinator's placement moves over real ZeroMQ sockets with fake hosts and
// trainers, with live moves off: join, drain and rebalance move actors through the latest checkpoint (a host
// joining before any checkpoint gets its share at the first), automatic rebalancing at
// committed checkpoints (rate-limited, migrating or replicating) and the per-step host
// load series.
#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proto/admin.capnp.h"
#include "tests/unit/coordinator/service_fixture.h"

namespace sy::coordinator {
namespace {

namespace fs = std::filesystem;
using testing::FakeHost;
using testing::FakeState;
using testing::Heartbeater;
using testing::WaitFor;
using ::testing::HasSubstr;

TEST_F(ServiceTest, JoinDrainAndRebalanceMoveActorsThroughTheLatestCheckpoint) {
  options_.auto_rebalance = false;  // the admin rebalance moves them here
  options_.live_moves = false;      // live moves: live_moves_service_test.cc
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  // host-0 holds E0 and E2: make them hot.
  ASSERT_TRUE(trainer_->ReportLoad(1, {{cluster::ActorKey::Expert(0, 0), 300, 0}, {cluster::ActorKey::Expert(0, 1), 50, 0},
                                         {cluster::ActorKey::Expert(0, 2), 200, 0}, {cluster::ActorKey::Expert(0, 3), 50, 0}})
                  .ok());
  const uint64_t epoch = Epoch();
  auto dry = Admin([](auto r) { r.initRebalance().setDryRun(true); });
  ASSERT_TRUE(dry.ok()) << dry.status();
  auto plan = dry->reply().getRebalance();
  EXPECT_FALSE(plan.getApplied());
  ASSERT_GT(plan.getMoves().size(), 0u);
  EXPECT_GT(plan.getMaxOverMeanBefore(), 1.25);
  EXPECT_LE(plan.getMaxOverMeanAfter(), 1.25);
  EXPECT_EQ(Epoch(), epoch);  // a dry run changes nothing
  // Moved state travels through a checkpoint: without one, moves are refused and nothing changes.
  auto refused = Admin([](auto r) { r.initRebalance(); });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("needs a committed checkpoint"));
  EXPECT_EQ(Admin([](auto r) { r.setDrain("host-0"); }).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Epoch(), epoch);

  Heartbeater beats({h0_.get(), h1_.get()}, {trainer_.get()});
  beats.step = 8;
  ASSERT_TRUE(ReachesStep(8));
  ASSERT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
  ASSERT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
  auto real = Admin([](auto r) { r.initRebalance(); });
  ASSERT_TRUE(real.ok()) << real.status();
  EXPECT_TRUE(real->reply().getRebalance().getApplied());
  EXPECT_GT(Epoch(), epoch);
  // Every actor is restored from checkpoint 1 on its (new) host and the trainer replays from step 8.
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 8u);
  for (FakeHost* h : {h0_.get(), h1_.get()}) {
    for (const cluster::ActorKey& actor : h->actors()) {
      ASSERT_EQ(h->installed().count(actor), 1u) << h->id() << " " << actor.ToString();
      EXPECT_EQ(h->installed().at(actor), FakeState(actor, 8));
    }
  }
  EXPECT_EQ(Counter("sy_coordinator_moves_total", {{"kind", "migrate"}}) +
                Counter("sy_coordinator_moves_total", {{"kind", "replicate"}}),
            static_cast<double>(plan.getMoves().size()));

  // host-2 joins: actors move to it and it gets their checkpointed state.
  auto h2 = Host("host-2");
  ASSERT_TRUE(h2->Register().ok());
  ASSERT_TRUE(WaitFor([&] { return h2->actors().size() == 2 && h2->installed().size() == 2; }));
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 2; }));

  // Drain host-0: it keeps nothing; the others hold and got every actor it had.
  ASSERT_TRUE(Admin([](auto r) { r.setDrain("host-0"); }).ok());
  ASSERT_TRUE(WaitFor([&] { return h0_->actors().empty() && trainer_->rollbacks().size() == 3; }));
  EXPECT_EQ(h1_->actors().size() + h2->actors().size(), 6u);
  EXPECT_EQ(Admin([](auto r) { r.setDrain("host-9"); }).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ServiceTest, HostJoiningBeforeAnyCheckpointGetsActorsAtTheFirstOne) {
  options_.auto_rebalance = false;
  options_.live_moves = false;
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  // No checkpoint yet: host-2 is registered but nothing can move to it.
  auto h2 = Host("host-2");
  ASSERT_TRUE(h2->Register().ok());
  const uint64_t epoch = Epoch();
  Heartbeater beats({h0_.get(), h1_.get(), h2.get()}, {trainer_.get()});
  beats.step = 6;
  ASSERT_TRUE(ReachesStep(6));
  EXPECT_TRUE(h2->actors().empty());
  EXPECT_EQ(Epoch(), epoch);
  EXPECT_TRUE(trainer_->rollbacks().empty());
  // The first committed checkpoint carries its share to it; the trainer replays from there.
  ASSERT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
  ASSERT_TRUE(WaitFor([&] { return h2->actors().size() == 2 && h2->installed().size() == 2; }));
  for (const cluster::ActorKey& actor : h2->actors()) EXPECT_EQ(h2->installed().at(actor), FakeState(actor, 6));
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 6u);
  EXPECT_GT(Epoch(), epoch);
}

struct SeriesStep {
  uint64_t epoch = 0;
  std::map<std::string, double> tokens;
  double max_over_mean = 0;
};

TEST_F(ServiceTest, AutomaticRebalanceMigratesHotExpertsAtCommittedCheckpointsAtMostOncePerPeriod) {
  options_.live_moves = false;
  options_.checkpoint_every = 5;
  options_.rebalance_every_steps = 10;
  options_.retain = 10;
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  auto status = [&](auto get) {
    std::optional<cluster::AdminReplyMessage> holder;
    return get(Status(holder));
  };
  auto migrations = [&] { return status([](auto s) { return s.getMigrations(); }); };
  auto checkpoint_step = [&] { return status([](auto s) { return s.getLatestCheckpointStep(); }); };
  auto series = [&] {
    std::map<uint64_t, SeriesStep> out;
    auto reply = Admin([](auto r) { r.setHostLoadSeries(); });
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return out;
    for (auto s : reply->reply().getHostLoadSeries()) {
      SeriesStep& step = out[s.getStep()];
      step.epoch = s.getEpoch();
      for (unsigned i = 0; i < s.getHosts().size(); ++i) step.tokens[s.getHosts()[i].cStr()] = s.getTokens()[i];
      step.max_over_mean = s.getMaxOverMean();
    }
    return out;
  };
  // host-0 holds E0 and E2 (500 tokens), host-1 E1 and E3 (100): max/mean 1.67.
  ASSERT_TRUE(trainer_->ReportLoad(1, {{cluster::ActorKey::Expert(0, 0), 300, 0}, {cluster::ActorKey::Expert(0, 1), 50, 0},
                                         {cluster::ActorKey::Expert(0, 2), 200, 0}, {cluster::ActorKey::Expert(0, 3), 50, 0}})
                  .ok());
  Heartbeater beats({h0_.get(), h1_.get()}, {trainer_.get()});
  beats.step = 6;
  // Checkpoint 5 commits: the plan moves E2 to host-1 (300 / 300), through that checkpoint.
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 5u);
  EXPECT_EQ(migrations(), 1u);
  EXPECT_EQ(Counter("sy_coordinator_moves_total", {{"kind", "replicate"}}), 0.0);
  ASSERT_TRUE(WaitFor([&] { return h1_->actors().size() == 4 && h1_->installed().count(cluster::ActorKey::Expert(0, 2)) == 1; }));
  EXPECT_EQ(h1_->installed().at(cluster::ActorKey::Expert(0, 2)), FakeState(cluster::ActorKey::Expert(0, 2), 5));

  // The load turns onto host-1 (E1 and E2 hot): checkpoint 10 is within 10 steps of the last
  // rebalance (step 5), so nothing moves; checkpoint 15 rebalances again.
  for (uint64_t step = 6; step <= 9; ++step) {
    ASSERT_TRUE(trainer_->ReportLoad(step, {{cluster::ActorKey::Expert(0, 0), 50, 0}, {cluster::ActorKey::Expert(0, 1), 400, 0},
                                              {cluster::ActorKey::Expert(0, 2), 300, 0}, {cluster::ActorKey::Expert(0, 3), 50, 0}})
                    .ok());
  }
  beats.step = 10;
  ASSERT_TRUE(WaitFor([&] { return checkpoint_step() == 10; }));
  EXPECT_EQ(migrations(), 1u);
  beats.step = 15;
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 2; }));
  EXPECT_EQ(trainer_->rollbacks()[1].step, 15u);
  EXPECT_GT(migrations(), 1u);

  // Each step's host load was counted with the table of its time.
  const auto by_step = series();
  ASSERT_EQ(by_step.count(1), 1u);
  ASSERT_EQ(by_step.count(6), 1u);
  EXPECT_EQ(by_step.at(1).tokens, (std::map<std::string, double>{{"host-0", 500}, {"host-1", 100}}));
  EXPECT_NEAR(by_step.at(1).max_over_mean, 500.0 / 300.0, 1e-9);
  EXPECT_EQ(by_step.at(6).tokens, (std::map<std::string, double>{{"host-0", 50}, {"host-1", 750}}));
  EXPECT_GT(by_step.at(6).epoch, by_step.at(1).epoch);
}

// E0 alone outweighs everything else (1000 of 1100 tokens): no migration helps, only a
// replica splits it. Off, or with max_replicas 1, nothing moves; with the default
// (2 replicas) E0 gains a replica on host-1 at checkpoint 5.
TEST_F(ServiceTest, AutomaticRebalanceReplicatesAnExpertTooHotForAnyHostUnlessOffOrLimited) {
  options_.live_moves = false;
  enum class Setting { kOff, kMigrationsOnly, kDefault };
  for (Setting setting : {Setting::kOff, Setting::kMigrationsOnly, Setting::kDefault}) {
    SCOPED_TRACE(setting == Setting::kOff ? "--auto_rebalance=false"
                                          : setting == Setting::kMigrationsOnly ? "--max_replicas=1" : "default");
    service_.reset();
    fs::remove_all(db_);
    options_.checkpoint_every = 5;
    options_.auto_rebalance = setting != Setting::kOff;
    options_.max_replicas = setting == Setting::kMigrationsOnly ? 1 : CoordinatorOptions().max_replicas;
    StartService();
    ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
    ASSERT_TRUE(trainer_->ReportLoad(1, {{cluster::ActorKey::Expert(0, 0), 1000, 0}, {cluster::ActorKey::Expert(0, 1), 50, 0},
                                         {cluster::ActorKey::Expert(0, 3), 50, 0}})
                    .ok());
    const uint64_t epoch = Epoch();
    Heartbeater beats({h0_.get(), h1_.get()}, {trainer_.get()});
    beats.step = 11;
    ASSERT_TRUE(WaitFor([&] {
      std::optional<cluster::AdminReplyMessage> holder;
      return Status(holder).getLatestCheckpointStep() == 10;
    }));
    std::optional<cluster::AdminReplyMessage> holder;
    EXPECT_EQ(Status(holder).getMigrations(), 0u);
    if (setting != Setting::kDefault) {
      EXPECT_EQ(Status(holder).getReplications(), 0u);
      EXPECT_EQ(Epoch(), epoch);
      EXPECT_TRUE(trainer_->rollbacks().empty());
      continue;
    }
    EXPECT_EQ(Status(holder).getReplications(), 1u);
    EXPECT_GT(Epoch(), epoch);
    // Both hosts hold E0, host-1's copy restored from checkpoint 5; the trainer replays from there.
    ASSERT_TRUE(WaitFor([&] { return h1_->installed().count(cluster::ActorKey::Expert(0, 0)) == 1; }));
    EXPECT_EQ(h1_->installed().at(cluster::ActorKey::Expert(0, 0)), FakeState(cluster::ActorKey::Expert(0, 0), 5));
    const std::vector<cluster::ActorKey> on_host_0 = h0_->actors();
    EXPECT_EQ(std::count(on_host_0.begin(), on_host_0.end(), cluster::ActorKey::Expert(0, 0)), 1);
    ASSERT_TRUE(WaitFor([&] { return !trainer_->rollbacks().empty(); }));
    EXPECT_EQ(trainer_->rollbacks()[0].step, 5u);
  }
}

}  // namespace
}  // namespace sy::coordinator
