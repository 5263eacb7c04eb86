// LearnedShape: the first node's model shape is adopted, the same shape is admitted
// again, another is refused naming both, and a shape without layers or experts is
// refused outright.
#include "services/coordinator/learned_shape.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sy::coordinator {
namespace {

using ::testing::HasSubstr;

TEST(LearnedShape, TheFirstShapeIsAdoptedAndOnlyThatShapeIsAdmittedAfter) {
  LearnedShape learned;
  EXPECT_FALSE(learned.known());
  const cluster::ModelShape shape{2, 8, 46};
  EXPECT_TRUE(learned.Check("host-0", shape).ok()) << "nothing known yet: any valid shape is admitted";
  learned.Adopt(shape, "host-0");
  ASSERT_TRUE(learned.known());
  EXPECT_EQ(learned.shape().num_dense_shards, 46u);
  EXPECT_TRUE(learned.Check("trainer-0", {2, 8, 46}).ok());

  const absl::Status refused = learned.Check("host-1", {1, 4, 2});
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("host-1's model has 1 Switch layer x 4 experts and 2 dense shards"));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("(learned from host-0) has 2 Switch layers x 8 experts and 46"));
  EXPECT_EQ(learned.Check("host-2", {2, 8, 45}).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(LearnedShape, AShapeWithoutSwitchLayersOrExpertsIsRefused) {
  LearnedShape learned;
  EXPECT_EQ(learned.Check("host-0", {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(learned.Check("host-0", {2, 0, 4}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(learned.Check("host-0", {1, 1, 0}).ok()) << "a model may have no dense shard";
}

TEST(LearnedShape, SpellsAShape) {
  EXPECT_EQ(ShapeToString({2, 8, 46}), "2 Switch layers x 8 experts and 46 dense shards");
  EXPECT_EQ(ShapeToString({1, 1, 1}), "1 Switch layer x 1 expert and 1 dense shard");
}

}  // namespace
}  // namespace sy::coordinator
