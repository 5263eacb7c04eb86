// The cluster flags of sy-trainer: parsed with the shared model flags and checked
// (the expert host's: tests/unit/expert_host/host_options_test.cc).
#include <gtest/gtest.h>

#include "common/flags/flags.h"
#include "services/trainer/trainer_flags.h"

namespace sy::trainer {
namespace {

TEST(ClusterOptionsTest, TrainerTakesHostsAndIndexAndTheSharedFlags) {
  auto o = ParseClusterTrainerOptions({"--hosts=tcp://a:1,tcp://b:2", "--trainer_index=1", "--num_trainers=2",
                                       "--data=/tmp/x", "--steps=3", "--experts=4", "--wire_dtype=bf16",
                                       "--keys=/tmp/keys"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->hosts, (std::vector<std::string>{"tcp://a:1", "tcp://b:2"}));
  EXPECT_EQ(o->trainer_index, 1);
  EXPECT_EQ(o->num_trainers, 2);
  EXPECT_EQ(o->base.experts, 4);
  EXPECT_EQ(o->base.wire_dtype, "bf16");
  EXPECT_EQ(o->security.keys_dir, "/tmp/keys");
}

TEST(ClusterOptionsTest, TrainerRejectsMissingHostsAndBadIndex) {
  EXPECT_EQ(ParseClusterTrainerOptions({"--data=/tmp/x", "--steps=3"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseClusterTrainerOptions({"--hosts=tcp://a:1", "--trainer_index=2", "--num_trainers=2",
                                           "--data=/tmp/x", "--steps=3"})
                   .ok());
  EXPECT_TRUE(ParseClusterTrainerOptions({"--standalone", "--data=/tmp/x", "--steps=3"}).ok());
}

TEST(ClusterOptionsTest, RecoveryTimeoutDefaultsTo120AndIsChecked) {
  auto o = ParseClusterTrainerOptions({"--hosts=tcp://a:1", "--data=/tmp/x", "--steps=3", "--insecure"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_DOUBLE_EQ(o->recovery_timeout_s, 120);
  o = ParseClusterTrainerOptions(
      {"--hosts=tcp://a:1", "--data=/tmp/x", "--steps=3", "--recovery_timeout_s=7.5", "--insecure"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_DOUBLE_EQ(o->recovery_timeout_s, 7.5);
  for (const char* bad : {"--recovery_timeout_s=0", "--recovery_timeout_s=-1", "--recovery_timeout_s=abc"}) {
    auto refused = ParseClusterTrainerOptions({"--hosts=tcp://a:1", "--data=/tmp/x", "--steps=3", bad});
    EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << bad << ": " << refused.status();
  }
  EXPECT_NE(flags::HelpText(kTrainerUsage, flags::Help::kOwn).find("--recovery_timeout_s"), std::string::npos);
}

}  // namespace
}  // namespace sy::trainer
