// The cluster flags of sy-trainer and sy-expert-host: taken out before the shared
// model flags are parsed, validated, and the host needs neither --data nor --steps.
#include <gtest/gtest.h>

#include "services/cluster/cluster_options.h"

namespace sy::trainer {
namespace {

TEST(ClusterOptionsTest, TrainerTakesHostsAndIndexAndTheSharedFlags) {
  auto o = cluster::ParseClusterTrainerOptions({"--hosts=tcp://a:1,tcp://b:2", "--trainer_index=1", "--num_trainers=2",
                                       "--data=/tmp/x", "--steps=3", "--experts=4", "--wire_dtype=bf16"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->hosts, (std::vector<std::string>{"tcp://a:1", "tcp://b:2"}));
  EXPECT_EQ(o->trainer_index, 1);
  EXPECT_EQ(o->num_trainers, 2);
  EXPECT_EQ(o->base.experts, 4);
  EXPECT_EQ(o->base.wire_dtype, "bf16");
}

TEST(ClusterOptionsTest, TrainerRejectsMissingHostsAndBadIndex) {
  EXPECT_EQ(cluster::ParseClusterTrainerOptions({"--data=/tmp/x", "--steps=3"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(cluster::ParseClusterTrainerOptions({"--hosts=tcp://a:1", "--trainer_index=2", "--num_trainers=2",
                                           "--data=/tmp/x", "--steps=3"})
                   .ok());
  EXPECT_TRUE(cluster::ParseClusterTrainerOptions({"--standalone", "--data=/tmp/x", "--steps=3"}).ok());
}

TEST(ClusterOptionsTest, RecoveryTimeoutDefaultsTo120AndIsChecked) {
  auto o = cluster::ParseClusterTrainerOptions({"--hosts=tcp://a:1", "--data=/tmp/x", "--steps=3"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_DOUBLE_EQ(o->recovery_timeout_s, 120);
  o = cluster::ParseClusterTrainerOptions({"--hosts=tcp://a:1", "--data=/tmp/x", "--steps=3", "--recovery_timeout_s=7.5"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_DOUBLE_EQ(o->recovery_timeout_s, 7.5);
  for (const char* bad : {"--recovery_timeout_s=0", "--recovery_timeout_s=-1", "--recovery_timeout_s=abc"}) {
    auto refused = cluster::ParseClusterTrainerOptions({"--hosts=tcp://a:1", "--data=/tmp/x", "--steps=3", bad});
    EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << bad << ": " << refused.status();
  }
  EXPECT_NE(cluster::ClusterTrainerHelpText().find("--recovery_timeout_s"), std::string::npos);
}

TEST(ClusterOptionsTest, HostNeedsNoDataAndChecksItsFlags) {
  auto o = cluster::ParseHostOptions({"--listen=tcp://127.0.0.1:0", "--ready_file=/tmp/r", "--host_index=1", "--num_hosts=2",
                             "--step_timeout_s=2.5", "--layers=2"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host_index, 1);
  EXPECT_DOUBLE_EQ(o->step_timeout_s, 2.5);
  EXPECT_EQ(o->model.layers, 2);
  EXPECT_FALSE(cluster::ParseHostOptions({"--host_index=2", "--num_hosts=2"}).ok());
  EXPECT_FALSE(cluster::ParseHostOptions({"--step_timeout_s=0"}).ok());
  EXPECT_FALSE(cluster::ParseHostOptions({"--nonsense=1"}).ok());
  auto advertised = cluster::ParseHostOptions({"--listen=tcp://0.0.0.0:5555", "--advertise_host=host-0"});
  ASSERT_TRUE(advertised.ok()) << advertised.status();
  EXPECT_EQ(advertised->advertise_host, "host-0");
  for (const char* bad : {"tcp://host-0", "host-0:5555", "a b"}) {
    EXPECT_EQ(cluster::ParseHostOptions({std::string("--advertise_host=") + bad}).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace sy::trainer
