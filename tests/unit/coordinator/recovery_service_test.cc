// The coordinator's recovery over real ZeroMQ sockets with fake hosts and trainers: a
// host failure re-places its actors, restores every actor from the latest checkpoint and
// rolls the trainers back; without a checkpoint the trainers are stopped with the reason;
// a trainer gets no new table until it answered its rollback.
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proto/admin.capnp.h"
#include "tests/unit/coordinator/service_fixture.h"

namespace sy::coordinator {
namespace {

using testing::FakeState;
using testing::Heartbeater;
using testing::WaitFor;
using ::testing::HasSubstr;

TEST_F(ServiceTest, HostFailureReplacesRestoresAndRollsTrainersBack) {
  options_.heartbeat_timeout = absl::Milliseconds(400);
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  {
    Heartbeater all({h0_.get(), h1_.get()}, {trainer_.get()});
    all.step = 10;
    ASSERT_TRUE(ReachesStep(10));
    ASSERT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
    ASSERT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
  }
  // host-1 goes silent; host-0 and the trainer keep beating.
  Heartbeater survivors({h0_.get()}, {trainer_.get()});
  survivors.step = 13;
  ASSERT_TRUE(WaitFor([&] { return h0_->actors().size() == 6; }));
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 10u);
  auto installed = h0_->installed();
  ASSERT_EQ(installed.size(), 6u);  // every actor restored to the checkpoint, survivors' too
  for (const auto& [actor, state] : installed) EXPECT_EQ(state, FakeState(actor, 10));
  std::optional<cluster::AdminReplyMessage> holder;
  auto status = Status(holder);
  EXPECT_EQ(status.getRecoveries(), 1u);
  EXPECT_EQ(status.getHostsAlive(), 1u);
  EXPECT_EQ(std::string(status.getPhase().cStr()), "training");
  EXPECT_EQ(trainer_->rollbacks()[0].epoch, h0_->table_epoch());
}

TEST_F(ServiceTest, AHostLostBeforeAnyCheckpointStopsTheTrainersWithTheReason) {
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  // host-1 goes (as `syctl remove-host` says): its actors have no checkpoint to come back from.
  ASSERT_TRUE(Admin([](auto r) { r.setRemoveHost("host-1"); }).ok());
  ASSERT_TRUE(WaitFor([&] { return !trainer_->stops().empty(); }));
  EXPECT_THAT(trainer_->stops()[0], HasSubstr("recovery impossible"));
  EXPECT_TRUE(trainer_->rollbacks().empty());
  std::optional<cluster::AdminReplyMessage> holder;
  EXPECT_THAT(std::string(Status(holder).getPhase().cStr()), HasSubstr("degraded"));
}

TEST_F(ServiceTest, TrainerGetsNoNewTableUntilItAnsweredItsRollback) {
  options_.auto_rebalance = false;
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  EXPECT_EQ(trainer_->PlacementTableEpoch().value(), Epoch());
  Heartbeater beats({h0_.get(), h1_.get()}, {trainer_.get()});
  beats.step = 4;
  ASSERT_TRUE(ReachesStep(4));
  ASSERT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
  ASSERT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
  // A restore (as every move and recovery does): the trainer is still busy with its rollback order.
  trainer_->HoldRollbackReplies();
  ASSERT_TRUE(Admin([](auto r) { r.setCheckpointRestore(1); }).ok());
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->PlacementTableEpoch().value(), 0u) << "no table before the rollback was answered";
  trainer_->ReleaseRollbackReplies();
  ASSERT_TRUE(WaitFor([&] { return trainer_->PlacementTableEpoch().value() == Epoch(); }));
  EXPECT_EQ(trainer_->rollbacks()[0].epoch, Epoch());
}

}  // namespace
}  // namespace sy::coordinator
