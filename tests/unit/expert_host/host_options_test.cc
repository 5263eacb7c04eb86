// The flags of sy-expert-host: parsed with the shared model flags (neither --data nor
// --steps needed) and checked, --emulate_device_gflops included.
#include <gtest/gtest.h>

#include "services/expert_host/host_flags.h"

namespace sy::expert_host {
namespace {

TEST(HostOptionsTest, HostNeedsNoDataAndChecksItsFlags) {
  auto o = ParseHostOptions({"--listen=tcp://127.0.0.1:0", "--ready_file=/tmp/r", "--host_index=1", "--num_hosts=2",
                             "--step_timeout_s=2.5", "--layers=2", "--insecure"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host_index, 1);
  EXPECT_DOUBLE_EQ(o->step_timeout_s, 2.5);
  EXPECT_EQ(o->model.layers, 2);
  EXPECT_FALSE(ParseHostOptions({"--host_index=2", "--num_hosts=2"}).ok());
  EXPECT_FALSE(ParseHostOptions({"--step_timeout_s=0"}).ok());
  EXPECT_FALSE(ParseHostOptions({"--nonsense=1"}).ok());
  auto advertised = ParseHostOptions({"--listen=tcp://0.0.0.0:5555", "--advertise_host=host-0", "--insecure"});
  ASSERT_TRUE(advertised.ok()) << advertised.status();
  EXPECT_EQ(advertised->advertise_host, "host-0");
  for (const char* bad : {"tcp://host-0", "host-0:5555", "a b"}) {
    EXPECT_EQ(ParseHostOptions({std::string("--advertise_host=") + bad}).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(HostOptionsTest, DeviceEmulationIsOffByDefaultAndNeedsAFiniteNonNegativeRate) {
  auto plain = ParseHostOptions({"--insecure"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->emulate_device_gflops, 0);
  auto emulated = ParseHostOptions({"--insecure", "--emulate_device_gflops=2.5"});
  ASSERT_TRUE(emulated.ok()) << emulated.status();
  EXPECT_DOUBLE_EQ(emulated->emulate_device_gflops, 2.5);
  for (const char* bad : {"-1", "nan", "inf", "-inf"}) {
    absl::Status status = ParseHostOptions({"--insecure", std::string("--emulate_device_gflops=") + bad}).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find("--emulate_device_gflops"), absl::string_view::npos) << status;
  }
}

}  // namespace
}  // namespace sy::expert_host
