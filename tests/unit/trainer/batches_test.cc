// Tests that micro-batches are pure functions of (seed, step, micro-batch) and
// that validation windows are fixed.
#include "services/trainer/batches.h"

#include <set>

#include "gtest/gtest.h"

namespace sy::trainer {
namespace {

std::vector<uint8_t> Text(int n) {
  std::vector<uint8_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 7919u) % 256u);
  return v;
}

MicroBatch Train(uint64_t seed, int64_t step, int64_t mb) {
  static const std::vector<uint8_t> text = Text(5000);
  absl::StatusOr<MicroBatch> b = CutTrainMicroBatch(text, seed, step, mb, 4, 16);
  EXPECT_TRUE(b.ok()) << b.status();
  return *b;
}

TEST(BatchesTest, SameKeyGivesSameBatch) {
  EXPECT_EQ(Train(1, 5, 2).inputs, Train(1, 5, 2).inputs);
  EXPECT_EQ(Train(1, 5, 2).targets, Train(1, 5, 2).targets);
}

TEST(BatchesTest, DifferentKeysGiveDifferentBatches) {
  const MicroBatch base = Train(1, 5, 2);
  EXPECT_NE(base.inputs, Train(2, 5, 2).inputs);
  EXPECT_NE(base.inputs, Train(1, 6, 2).inputs);
  EXPECT_NE(base.inputs, Train(1, 5, 3).inputs);
}

TEST(BatchesTest, TargetsAreInputsShiftedByOne) {
  const std::vector<uint8_t> text = Text(5000);
  const MicroBatch b = Train(3, 0, 0);
  ASSERT_EQ(b.inputs.size(), 64u);
  for (int s = 0; s < 4; ++s) {
    for (int t = 0; t + 1 < 16; ++t) EXPECT_EQ(b.targets[s * 16 + t], b.inputs[s * 16 + t + 1]);
  }
  for (int32_t tok : b.inputs) EXPECT_TRUE(tok >= 0 && tok < 256);
}

TEST(BatchesTest, StartsCoverTheWholeSplitIncludingTheLastWindow) {
  const std::vector<uint8_t> text = Text(20);  // T=16: starts 0..3, all bytes distinct
  std::set<int32_t> firsts;
  for (int step = 0; step < 200; ++step) {
    absl::StatusOr<MicroBatch> b = CutTrainMicroBatch(text, 9, step, 0, 1, 16);
    ASSERT_TRUE(b.ok());
    firsts.insert(b->inputs[0]);
  }
  EXPECT_EQ(firsts, (std::set<int32_t>{text[0], text[1], text[2], text[3]}));
}

TEST(BatchesTest, BadShapesAreInvalidArgument) {
  const std::vector<uint8_t> text = Text(16);
  EXPECT_EQ(CutTrainMicroBatch(text, 1, 0, 0, 2, 16).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CutTrainMicroBatch(text, 1, 0, 0, 0, 8).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CutTrainMicroBatch(text, 1, -1, 0, 1, 8).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CutValMicroBatch(text, 2, 2, 1, 8).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CutValMicroBatch(text, 0, 1, 1, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BatchesTest, ValWindowsAreFixedAndSpanTheSplit) {
  const std::vector<uint8_t> val = Text(1000);
  absl::StatusOr<MicroBatch> first = CutValMicroBatch(val, 0, 3, 2, 10);
  absl::StatusOr<MicroBatch> last = CutValMicroBatch(val, 2, 3, 2, 10);
  ASSERT_TRUE(first.ok() && last.ok());
  EXPECT_EQ(first->inputs[0], val[0]);                       // first window at the start
  EXPECT_EQ(last->targets.back(), val.back());               // last window ends at the end
  EXPECT_EQ(CutValMicroBatch(val, 1, 3, 2, 10)->inputs, CutValMicroBatch(val, 1, 3, 2, 10)->inputs);
  EXPECT_NE(first->inputs, last->inputs);
}

}  // namespace
}  // namespace sy::trainer
