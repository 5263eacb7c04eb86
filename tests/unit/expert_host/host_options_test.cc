// The flags of sy-expert-host: parsed with the shared model flags (neither --data nor
// --steps needed) and checked.
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

}  // namespace
}  // namespace sy::expert_host
