// The endpoint an expert host registers and writes to its ready file: what other
// machines can connect to, not a wildcard bind address.
#include <gtest/gtest.h>

#include "services/expert_host/host_process.h"

namespace sy::expert_host {
namespace {

TEST(AdvertisedEndpointTest, AWildcardBindIsReachedAtTheHostname) {
  EXPECT_EQ(*AdvertisedEndpoint("tcp://0.0.0.0:5555", "", "node-7"), "tcp://node-7:5555");
  EXPECT_EQ(*AdvertisedEndpoint("tcp://*:5555", "", "node-7"), "tcp://node-7:5555");
}

TEST(AdvertisedEndpointTest, AnExplicitNameWinsAndKeepsTheBoundPort) {
  EXPECT_EQ(*AdvertisedEndpoint("tcp://0.0.0.0:41003", "host-0", "node-7"), "tcp://host-0:41003");
  EXPECT_EQ(*AdvertisedEndpoint("tcp://127.0.0.1:41003", "10.0.0.2", "node-7"), "tcp://10.0.0.2:41003");
}

TEST(AdvertisedEndpointTest, ASpecificAddressAndOtherTransportsStayAsBound) {
  EXPECT_EQ(*AdvertisedEndpoint("tcp://127.0.0.1:41003", "", "node-7"), "tcp://127.0.0.1:41003");
  EXPECT_EQ(*AdvertisedEndpoint("inproc://host-0", "", "node-7"), "inproc://host-0");
  EXPECT_EQ(AdvertisedEndpoint("tcp://0.0.0.0", "", "node-7").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sy::expert_host
