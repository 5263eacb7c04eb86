// The coordinator over a disk that fails: a refused write turns `syctl status` into
// "degraded: <reason>", and a full disk during a checkpoint leaves the previous
// checkpoint the latest, the one a recovery restores, and the status says so.
#include <optional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"

#include "tests/unit/coordinator/service_fixture.h"
#include "tests/unit/coordinator/storage_faults.h"

namespace sy::coordinator {
namespace {

using testing::FailingWritesEnv;
using testing::Heartbeater;
using testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class StorageServiceTest : public ServiceTest {
 protected:
  std::string Phase() {
    std::optional<cluster::AdminReplyMessage> holder;
    return Status(holder).getPhase().cStr();
  }
  // Starts the service on env_, registers two hosts and a trainer, commits checkpoint 1 at step 5.
  void StartWithCheckpointOne() {
    storage_env_ = &env_;
    StartService();
    ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
    ASSERT_TRUE(h0_->Heartbeat(5).ok() && h1_->Heartbeat(5).ok());
    ASSERT_TRUE(ReachesStep(5));
    ASSERT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
    ASSERT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
    ASSERT_EQ(Phase(), "training");
  }
  FailingWritesEnv env_;
};

TEST_F(StorageServiceTest, ARefusedPlacementWriteTurnsTheStatusDegraded) {
  ASSERT_NO_FATAL_FAILURE(StartWithCheckpointOne());
  env_.fail = true;
  // A restore publishes a new placement epoch, which the coordinator saves.
  ASSERT_TRUE(Admin([](auto r) { r.setCheckpointRestore(1); }).ok());
  const std::string phase = Phase();
  EXPECT_THAT(phase, StartsWith("degraded: "));
  EXPECT_THAT(phase, HasSubstr("could not be saved"));
  EXPECT_THAT(phase, HasSubstr("injected write failure"));
}

TEST_F(StorageServiceTest, FullDiskDuringACheckpointKeepsThePreviousOneInUseAndSaysSo) {
  options_.heartbeat_timeout = absl::Milliseconds(400);
  ASSERT_NO_FATAL_FAILURE(StartWithCheckpointOne());
  env_.disk_full = true;
  env_.fail = true;
  {
    Heartbeater all({h0_.get(), h1_.get()}, {trainer_.get()});
    all.step = 10;
    ASSERT_TRUE(ReachesStep(10));
    auto second = Admin([](auto r) { r.setCheckpointNow(); });
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_EQ(second->reply().getCheckpointId(), 2u);
    ASSERT_TRUE(WaitFor([&] { return absl::StartsWith(Phase(), "degraded"); }));
  }
  const std::string phase = Phase();
  EXPECT_THAT(phase, HasSubstr("checkpoint 2 at step 10 could not be written"));
  EXPECT_THAT(phase, HasSubstr("No space left on device"));
  EXPECT_THAT(phase, HasSubstr("checkpoint 1 (step 5) stays the latest"));
  EXPECT_EQ(LatestCheckpoint(), 1u);
  // host-1 goes silent: the recovery restores checkpoint 1 and rolls the trainer back to its step.
  Heartbeater survivors({h0_.get()}, {trainer_.get()});
  survivors.step = 12;
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 5u);
  EXPECT_EQ(trainer_->rollbacks()[0].checkpoint_id, 1u);
  EXPECT_THAT(Phase(), StartsWith("degraded: "));  // the disk is still full
}

}  // namespace
}  // namespace sy::coordinator
