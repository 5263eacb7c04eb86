// The coordinator's live moves over real ZeroMQ sockets with fake hosts and a fake
// trainer: a rebalance between live hosts goes out as a table naming the moves and
// their boundary (a few steps after the newest step reported), with no restore and no
// rollback; no other move starts while they are under way; once a host applied the
// step after the boundary the table is sent again without them (the old hosts drop what
// they streamed away), and a live move that sees no progress falls back to checkpoint
// recovery.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proto/admin.capnp.h"
#include "tests/unit/coordinator/service_fixture.h"

namespace sy::coordinator {
namespace {

using testing::FakeHost;
using testing::FakeState;
using testing::Heartbeater;
using testing::WaitFor;
using ::testing::HasSubstr;

class LiveMovesTest : public ServiceTest {
 protected:
  // Two hosts and a trainer at step 8 with a committed checkpoint there, host-0's
  // experts hot; then an admin rebalance. Returns the epoch before it.
  uint64_t RebalanceAtStep8(Heartbeater& beats) {
    beats.step = 8;
    EXPECT_TRUE(ReachesStep(8));
    EXPECT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
    EXPECT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
    const uint64_t epoch = Epoch();
    auto applied = Admin([](auto r) { r.initRebalance(); });
    EXPECT_TRUE(applied.ok()) << applied.status();
    if (applied.ok()) {
      EXPECT_TRUE(applied->reply().getRebalance().getApplied());
    }
    return epoch;
  }

  void SetUpCluster() {
    options_.auto_rebalance = false;  // the admin rebalance moves them here
    options_.live_moves = true;
    options_.live_move_lead_steps = 3;
    StartService();
    ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
    ASSERT_TRUE(trainer_->ReportLoad(1, {{cluster::ActorKey::Expert(0, 0), 300, 0},
                                         {cluster::ActorKey::Expert(0, 1), 50, 0},
                                         {cluster::ActorKey::Expert(0, 2), 200, 0},
                                         {cluster::ActorKey::Expert(0, 3), 50, 0}})
                    .ok());
  }
};

TEST_F(LiveMovesTest, ARebalanceMovesLiveAfterAStepAheadWithoutRollbackAndIsForgottenOnceDone) {
  ASSERT_NO_FATAL_FAILURE(SetUpCluster());
  Heartbeater beats({h0_.get(), h1_.get()}, {trainer_.get()});
  const uint64_t before = RebalanceAtStep8(beats);
  const uint64_t epoch = Epoch();
  EXPECT_EQ(epoch, before + 1);
  // Both hosts got the table with the moves, effective after step 8 + 3.
  for (FakeHost* h : {h0_.get(), h1_.get()}) {
    ASSERT_TRUE(WaitFor([&] { return h->table_epoch() == epoch; })) << h->id();
    const std::vector<cluster::LiveMove> live = h->live_moves();
    ASSERT_FALSE(live.empty()) << h->id();
    for (const cluster::LiveMove& m : live) {
      EXPECT_EQ(m.last_source_step, 11u);
      EXPECT_EQ(m.move.from, "host-0");
      EXPECT_EQ(m.move.to, "host-1");
      EXPECT_FALSE(m.move.replicate);
    }
  }
  // Nothing restored, nobody rolled back; another move waits for these.
  EXPECT_TRUE(h1_->installed().empty());
  EXPECT_TRUE(trainer_->rollbacks().empty());
  auto refused = Admin([](auto r) { r.setDrain("host-1"); });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("moving live after step 11"));
  EXPECT_EQ(Epoch(), epoch);

  // A host applied step 12: the moves are done; the table goes out again without them.
  beats.step = 12;
  ASSERT_TRUE(WaitFor([&] { return h0_->live_moves().empty() && h1_->live_moves().empty(); }));
  EXPECT_EQ(Epoch(), epoch);
  EXPECT_TRUE(trainer_->rollbacks().empty());
  std::optional<cluster::AdminReplyMessage> holder;
  EXPECT_EQ(Status(holder).getRecoveries(), 0u);
  // The next move may start.
  ASSERT_TRUE(Admin([](auto r) { r.setDrain("host-0"); }).ok());
  EXPECT_EQ(Epoch(), epoch + 1);
}

TEST_F(LiveMovesTest, ALiveMoveThatSeesNoProgressFallsBackToCheckpointRecovery) {
  options_.live_move_timeout = absl::Milliseconds(500);
  ASSERT_NO_FATAL_FAILURE(SetUpCluster());
  Heartbeater beats({h0_.get(), h1_.get()}, {trainer_.get()});
  RebalanceAtStep8(beats);
  // The hosts stay at step 8 (the moves after step 11 never happen): they are given up,
  // every actor is restored from checkpoint 1 on its new host, and the trainer replays
  // from step 8.
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 8u);
  for (FakeHost* h : {h0_.get(), h1_.get()}) {
    EXPECT_TRUE(h->live_moves().empty()) << h->id();
    for (const cluster::ActorKey& actor : h->actors()) {
      ASSERT_EQ(h->installed().count(actor), 1u) << h->id() << " " << actor.ToString();
      EXPECT_EQ(h->installed().at(actor), FakeState(actor, 8));
    }
  }
}

}  // namespace
}  // namespace sy::coordinator
