// The coordinator's checkpoints over real ZeroMQ sockets with fake hosts and trainers:
// checkpoint now (hosts stream chunks) and restore, a checkpoint that cannot complete is
// abandoned, automatic checkpoints every N steps (asked ahead, with retention, and for
// hosts that ran ahead), and none waits for a step after every trainer finished.
#include <optional>
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

TEST_F(ServiceTest, CheckpointNowStoresEveryActorAndRestoreStreamsItBack) {
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  ASSERT_TRUE(h0_->Heartbeat(5).ok() && h1_->Heartbeat(5).ok());

  auto now = Admin([](auto r) { r.setCheckpointNow(); });
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->reply().getCheckpointId(), 1u);
  ASSERT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
  EXPECT_EQ(h0_->checkpoint_chunks_sent() + h1_->checkpoint_chunks_sent(), 6 * 3);
  EXPECT_EQ(Counter("sy_coordinator_checkpoints_total", {{"result", "committed"}}), 1);
  auto list = Admin([](auto r) { r.setCheckpointList(); });
  ASSERT_TRUE(list.ok());
  auto manifests = list->reply().getCheckpoints();
  ASSERT_EQ(manifests.size(), 1u);
  EXPECT_EQ(manifests[0].getStep(), 5u);
  ASSERT_EQ(manifests[0].getActors().size(), 6u);
  EXPECT_EQ(manifests[0].getActors()[0].getChunkCount(), 3u);
  EXPECT_EQ(manifests[0].getActors()[0].getTotalBytes(), FakeState(cluster::ActorKey::Expert(0, 0), 5).size());

  const uint64_t epoch = Epoch();
  auto restore = Admin([](auto r) { r.setCheckpointRestore(1); });
  ASSERT_TRUE(restore.ok()) << restore.status();
  EXPECT_EQ(restore->reply().getCheckpointId(), 1u);
  EXPECT_GT(Epoch(), epoch);  // requests from before the restore are stale
  for (FakeHost* h : {h0_.get(), h1_.get()}) {
    auto installed = h->installed();
    ASSERT_EQ(installed.size(), 3u) << h->id();
    for (const auto& [actor, state] : installed) EXPECT_EQ(state, FakeState(actor, 5)) << actor.ToString();
  }
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 5u);
  EXPECT_EQ(trainer_->rollbacks()[0].checkpoint_id, 1u);
  // Unknown checkpoint: NotFound, nothing changes.
  auto missing = Admin([](auto r) { r.setCheckpointRestore(9); });
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ServiceTest, CheckpointThatCannotCompleteIsAbandonedAndThePreviousStaysLatest) {
  options_.checkpoint_timeout = absl::Milliseconds(800);
  StartService();
  auto h0 = Host("host-0"), h1 = Host("host-1");
  ASSERT_TRUE(h0->Register().ok() && h1->Register().ok());
  ASSERT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
  ASSERT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
  h1.reset();  // host-1 vanishes without a word: its actors' state never arrives
  auto second = Admin([](auto r) { r.setCheckpointNow(); });
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->reply().getCheckpointId(), 2u);
  ASSERT_TRUE(WaitFor([&] {
    std::optional<cluster::AdminReplyMessage> holder;
    return Status(holder).getCheckpointInProgress() == 0;
  }));
  EXPECT_EQ(LatestCheckpoint(), 1u);
  auto list = Admin([](auto r) { r.setCheckpointList(); });
  ASSERT_TRUE(list.ok());
  auto manifests = list->reply().getCheckpoints();
  ASSERT_EQ(manifests.size(), 1u);
  EXPECT_EQ(manifests[0].getCheckpointId(), 1u);
}

TEST_F(ServiceTest, AutomaticCheckpointsAtEveryNthStepWithRetention) {
  options_.checkpoint_every = 5;
  options_.retain = 2;
  StartService();
  auto h0 = Host("host-0"), h1 = Host("host-1");
  ASSERT_TRUE(h0->Register().ok() && h1->Register().ok());
  Heartbeater beats({h0.get(), h1.get()}, {});
  // The hosts are asked for the next boundary ahead (step 5) and stream when they reach it;
  // each commit asks for the next boundary right away.
  beats.step = 3;
  ASSERT_TRUE(WaitFor([&] { return !h0->stream_outs().empty(); }));
  for (const auto& s : h0->stream_outs()) EXPECT_EQ(s.at_step, 5u);
  EXPECT_TRUE(CheckpointSteps().empty()) << "nothing is committed before the hosts reach step 5";
  beats.step = 6;
  ASSERT_TRUE(WaitFor([&] { return CheckpointSteps() == std::vector<uint64_t>{5}; }));
  beats.step = 10;
  ASSERT_TRUE(WaitFor([&] { return CheckpointSteps() == (std::vector<uint64_t>{5, 10}); }));
  beats.step = 15;
  ASSERT_TRUE(WaitFor([&] { return CheckpointSteps() == (std::vector<uint64_t>{10, 15}); }));  // retain 2
  EXPECT_EQ(LatestCheckpoint(), 3u);
  for (const auto& s : h0->stream_outs()) EXPECT_EQ(s.at_step % 5, 0u);
}

TEST_F(ServiceTest, HostsThatRanAheadStillGetEveryCheckpointTheyKeep) {
  options_.checkpoint_every = 5;
  options_.retain = 20;
  StartService();
  auto h0 = Host("host-0"), h1 = Host("host-1");
  ASSERT_TRUE(h0->Register().ok() && h1->Register().ok());
  // The first heartbeat the coordinator sees is already at step 17: 5, 10 and 15 are
  // all still kept by the hosts, and all are taken, oldest first.
  Heartbeater beats({h0.get(), h1.get()}, {});
  beats.step = 17;
  ASSERT_TRUE(WaitFor([&] { return CheckpointSteps() == (std::vector<uint64_t>{5, 10, 15}); })) << CheckpointSteps().size();
  std::optional<cluster::AdminReplyMessage> holder;
  EXPECT_EQ(Status(holder).getLatestCheckpointStep(), 15u);
  // Step 20 was asked for ahead, at 17. Then far ahead (step 52): the hosts keep only
  // their last kHostSnapshotsKept multiples of 5, so after 20 the coordinator goes on
  // from the oldest of those (35), not from 25.
  beats.step = 52;
  ASSERT_TRUE(WaitFor([&] { return CheckpointSteps().size() == 8; })) << CheckpointSteps().size();
  EXPECT_EQ(CheckpointSteps(), (std::vector<uint64_t>{5, 10, 15, 20, 35, 40, 45, 50}));
}

TEST_F(ServiceTest, NoCheckpointWaitsForAStepAfterEveryTrainerFinished) {
  options_.checkpoint_every = 5;
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  Heartbeater beats({h0_.get(), h1_.get()}, {});
  beats.step = 12;
  auto in_progress_step = [&] {
    std::optional<cluster::AdminReplyMessage> holder;
    return Status(holder).getCheckpointInProgressStep();
  };
  // 5 and 10 are taken; 15 is asked for ahead of the hosts.
  ASSERT_TRUE(WaitFor([&] { return in_progress_step() == 15; }));
  EXPECT_EQ(CheckpointSteps(), (std::vector<uint64_t>{5, 10}));
  // The only trainer says it finished at step 12: step 15 will never come.
  ASSERT_TRUE(trainer_->Heartbeat(12, /*finished=*/true).ok());
  ASSERT_TRUE(WaitFor([&] { return in_progress_step() == 0; }));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(in_progress_step(), 0u);  // and none after it
  EXPECT_EQ(CheckpointSteps(), (std::vector<uint64_t>{5, 10}));
}

}  // namespace
}  // namespace sy::coordinator
