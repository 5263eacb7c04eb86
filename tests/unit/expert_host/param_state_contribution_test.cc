// ParamState's gradient contributions: a node of the step's tree pushed pre-summed
// (as a trainer holding those micro-batches sends it) applies with the bits of its
// micro-batches pushed one by one; a span that is not one node, or that overlaps a
// contribution already in, is refused and changes nothing. A step's contributions all
// come in f32 or all in bf16 (--dense_wire_dtype): the first says which.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "gpu/model/grad_tree.h"
#include "services/expert_host/param_state.h"

namespace sy::expert_host {
namespace {

constexpr int kSize = 41;
constexpr int kMicroBatches = 6;  // tree: [0,4) = [0,2) + [2,4), then [4,6)

std::unique_ptr<ParamState> NewState(gpu::Backend* backend) {
  std::vector<float> init(kSize);
  for (int i = 0; i < kSize; ++i) init[i] = 0.02f * static_cast<float>(i % 5) - 0.04f;
  return *ParamState::Create(backend, {{0, -1, kSize, true}}, init, kMicroBatches, {});
}

// Magnitudes far apart, so that the order of the additions shows in the bits.
std::vector<float> Grad(int m) {
  std::vector<float> g(kSize);
  for (int i = 0; i < kSize; ++i) {
    g[i] = (static_cast<float>((i * 7 + m * 13) % 11) - 5.0f) * (m % 2 == 0 ? 1e-3f : 1e3f) / 3.0f;
  }
  return g;
}

// The node's sum as a trainer makes it: a tree of the node's own shape.
std::vector<float> PreSummed(gpu::Backend* backend, int lo, int hi) {
  auto tree = *gpu::GradTree::Create(backend, kSize, hi - lo);
  for (int m = lo; m < hi; ++m) EXPECT_TRUE(tree->Add(m - lo, Grad(m).data()).ok());
  const float* sum = *tree->Result();
  return std::vector<float>(sum, sum + kSize);
}

TEST(ParamStateContributionTest, APreSummedNodeAppliesWithTheBitsOfItsMicroBatches) {
  auto backend = *gpu::CreateBackend(gpu::Device::Cpu(), {1});
  auto one_by_one = NewState(backend.get());
  for (int m = 0; m < kMicroBatches; ++m) ASSERT_TRUE(one_by_one->AddContribution(m, Grad(m).data()).ok());
  auto halves = NewState(backend.get());  // [4,6) and [0,2) pre-summed, 2 and 3 alone
  ASSERT_TRUE(halves->AddContribution(4, 6, PreSummed(backend.get(), 4, 6).data()).ok());
  ASSERT_TRUE(halves->AddContribution(0, 2, PreSummed(backend.get(), 0, 2).data()).ok());
  ASSERT_TRUE(halves->AddContribution(2, Grad(2).data()).ok());
  ASSERT_TRUE(halves->AddContribution(3, Grad(3).data()).ok());
  EXPECT_EQ(halves->contributions(), kMicroBatches);
  auto nodes = NewState(backend.get());  // [0,4) and [4,6), each pre-summed
  ASSERT_TRUE(nodes->AddContribution(0, 4, PreSummed(backend.get(), 0, 4).data()).ok());
  ASSERT_TRUE(nodes->AddContribution(4, 6, PreSummed(backend.get(), 4, 6).data()).ok());
  for (ParamState* state : {one_by_one.get(), halves.get(), nodes.get()}) {
    ASSERT_TRUE(state->Finalize().ok());
    ASSERT_TRUE(state->Apply(1, 1.0f, 1e-2f).ok());
  }
  EXPECT_EQ(*halves->Checksum(), *one_by_one->Checksum());
  EXPECT_EQ(*nodes->Checksum(), *one_by_one->Checksum());

  // The test data tells the tree from a running sum, so a trainer summing its
  // micro-batches in the wrong order would fail here.
  std::vector<float> sum = Grad(0);
  for (int m = 1; m < 4; ++m) {
    const std::vector<float> g = Grad(m);
    for (int i = 0; i < kSize; ++i) sum[i] += g[i];
  }
  EXPECT_NE(sum, PreSummed(backend.get(), 0, 4));
}

TEST(ParamStateContributionTest, ASpanThatIsNotOneNewNodeIsRefusedAndChangesNothing) {
  auto backend = *gpu::CreateBackend(gpu::Device::Cpu(), {1});
  auto state = NewState(backend.get());
  const std::vector<float> g = Grad(0);
  ASSERT_TRUE(state->AddContribution(2, g.data()).ok());
  EXPECT_EQ(state->AddContribution(1, 3, g.data()).code(), absl::StatusCode::kInvalidArgument);  // not a node
  EXPECT_EQ(state->AddContribution(3, 6, g.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(state->AddContribution(4, 4, g.data()).code(), absl::StatusCode::kInvalidArgument);  // empty
  EXPECT_EQ(state->AddContribution(4, 7, g.data()).code(), absl::StatusCode::kInvalidArgument);  // past M
  EXPECT_EQ(state->AddContribution(2, 4, g.data()).code(), absl::StatusCode::kAlreadyExists);    // holds 2
  EXPECT_EQ(state->contributions(), 1);
  for (int m = 0; m < kMicroBatches; ++m) EXPECT_EQ(state->has_contribution(m), m == 2) << m;
  EXPECT_TRUE(state->AddContribution(0, 2, g.data()).ok()) << "the refusals left [0, 2) open";
}

// bf16 contributions: the step's tree rounds every sum, so the pushed nodes give the bits of
// their micro-batches pushed one by one in bf16; an f32 one cannot join that step (nor a bf16
// one an f32 step), and the next step may change.
TEST(ParamStateContributionTest, AStepsContributionsAreAllF32OrAllBf16) {
  auto backend = *gpu::CreateBackend(gpu::Device::Cpu(), {1});
  auto bf16_node = [&](int lo, int hi) {
    auto tree = *gpu::GradTree::Create(backend.get(), kSize, hi - lo);
    tree->set_bf16_ranges({{0, kSize}});
    for (int m = lo; m < hi; ++m) EXPECT_TRUE(tree->Add(m - lo, Grad(m).data()).ok());
    const float* sum = *tree->Result();
    return std::vector<float>(sum, sum + kSize);
  };
  auto one_by_one = NewState(backend.get()), nodes = NewState(backend.get()), plain = NewState(backend.get());
  for (int m = 0; m < kMicroBatches; ++m) {
    ASSERT_TRUE(one_by_one->AddContribution(m, m + 1, bf16_node(m, m + 1).data(), /*bf16=*/true).ok());
    ASSERT_TRUE(plain->AddContribution(m, Grad(m).data()).ok());
  }
  ASSERT_TRUE(nodes->AddContribution(4, 6, bf16_node(4, 6).data(), /*bf16=*/true).ok());
  EXPECT_TRUE(nodes->bf16_step());
  const std::vector<float> g = Grad(0);
  EXPECT_EQ(nodes->AddContribution(0, 4, PreSummed(backend.get(), 0, 4).data()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(nodes->CheckWire(false).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(nodes->contributions(), 2) << "the refused f32 node changed nothing";
  ASSERT_TRUE(nodes->AddContribution(0, 4, bf16_node(0, 4).data(), /*bf16=*/true).ok());
  EXPECT_EQ(plain->AddContribution(0, 1, g.data(), /*bf16=*/true).code(), absl::StatusCode::kInvalidArgument)
      << "plain's step is f32 (and micro-batch 0 is there anyway)";
  EXPECT_EQ(plain->CheckWire(true).code(), absl::StatusCode::kInvalidArgument);
  for (ParamState* state : {one_by_one.get(), nodes.get(), plain.get()}) {
    ASSERT_TRUE(state->Finalize().ok());
    ASSERT_TRUE(state->Apply(1, 1.0f, 1e-2f).ok());
  }
  EXPECT_EQ(*nodes->Checksum(), *one_by_one->Checksum());
  EXPECT_NE(*nodes->Checksum(), *plain->Checksum()) << "the rounding shows in the weights";
  // Step 2 starts afresh: f32 now.
  EXPECT_TRUE(nodes->AddContribution(0, g.data()).ok());
  EXPECT_FALSE(nodes->bf16_step());
}

}  // namespace
}  // namespace sy::expert_host
