// Tests for the step stats' wire converters (services/cluster/step_wire.h): every field,
// the per-Switch-layer lists included, survives a trip through the Cap'n Proto struct.
#include "services/cluster/step_wire.h"

#include <capnp/message.h>

#include "gtest/gtest.h"

namespace sy::cluster {
namespace {

MicroBatchStatsValue RoundTrip(const MicroBatchStatsValue& v) {
  capnp::MallocMessageBuilder message;
  auto builder = message.initRoot<proto::expert::MicroBatchStats>();
  StatsToWire(v, builder);
  return StatsFromWire(builder.asReader());
}

TEST(StepWireTest, StatsRoundTripWithEveryList) {
  MicroBatchStatsValue v;
  v.micro_batch = 5;
  v.loss = 2.5;
  v.ce = 2.25;
  v.lb = 0.125;
  v.z = 0.0625;
  v.tokens = 512;
  v.dropped_tokens = 9;
  v.switch_layer_dropped_tokens = {4, 0, 5};
  v.expert_counts = {{100, 28}, {}, {7, 0, 121}};
  v.bytes_sent = 1 << 20;
  const MicroBatchStatsValue back = RoundTrip(v);
  EXPECT_EQ(back.micro_batch, 5u);
  EXPECT_EQ(back.loss, 2.5);
  EXPECT_EQ(back.ce, 2.25);
  EXPECT_EQ(back.lb, 0.125);
  EXPECT_EQ(back.z, 0.0625);
  EXPECT_EQ(back.tokens, 512);
  EXPECT_EQ(back.dropped_tokens, 9);
  EXPECT_EQ(back.switch_layer_dropped_tokens, v.switch_layer_dropped_tokens);
  EXPECT_EQ(back.expert_counts, v.expert_counts);
  EXPECT_EQ(back.bytes_sent, uint64_t{1} << 20);
}

TEST(StepWireTest, DenseModelStatsHaveEmptyLists) {
  MicroBatchStatsValue v;
  v.tokens = 64;
  const MicroBatchStatsValue back = RoundTrip(v);
  EXPECT_TRUE(back.switch_layer_dropped_tokens.empty());
  EXPECT_TRUE(back.expert_counts.empty());
  EXPECT_EQ(back.tokens, 64);
}

}  // namespace
}  // namespace sy::cluster
