// ParamState's checkpoint bytes: SaveState then LoadState brings back the exact
// weights and Adam moments (and version), so training continues bit for bit; a
// state of the wrong size is refused and changes nothing.
#include <cstring>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/expert_host/param_state.h"

namespace sy::expert_host {
namespace {

class ParamStateCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = *gpu::CreateBackend(gpu::Device::Cpu(), {1});
    std::vector<float> init(kSize);
    for (int i = 0; i < kSize; ++i) init[i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
    auto state = ParamState::Create(backend_.get(), {{0, -1, kSize, true}}, init, kMicroBatches, {});
    ASSERT_TRUE(state.ok()) << state.status();
    state_ = *std::move(state);
  }

  // One step: every micro-batch contributes a gradient derived from (step, m).
  void Step(uint64_t step) {
    for (int m = 0; m < kMicroBatches; ++m) {
      std::vector<float> grad(kSize);
      for (int i = 0; i < kSize; ++i) grad[i] = 0.001f * static_cast<float>((i + m + 3 * step) % 5) - 0.002f;
      ASSERT_TRUE(state_->AddContribution(m, grad.data()).ok());
    }
    ASSERT_TRUE(state_->Finalize().ok());
    ASSERT_TRUE(state_->Apply(step, 1.0f, 1e-2f).ok());
  }

  static constexpr int kSize = 37;
  static constexpr int kMicroBatches = 3;
  std::unique_ptr<gpu::Backend> backend_;
  std::unique_ptr<ParamState> state_;
};

TEST_F(ParamStateCheckpointTest, RestoredStateContinuesBitForBit) {
  Step(1);
  Step(2);
  absl::StatusOr<std::string> saved = state_->SaveState();
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->size(), 3u * kSize * sizeof(float));  // weights, m, v
  const uint64_t at_two = *state_->Checksum();
  Step(3);
  Step(4);
  const uint64_t at_four = *state_->Checksum();
  EXPECT_NE(at_four, at_two);

  ASSERT_TRUE(state_->LoadState(2, *saved).ok());
  EXPECT_EQ(state_->version(), 2u);
  EXPECT_EQ(*state_->Checksum(), at_two);
  Step(3);
  Step(4);
  EXPECT_EQ(*state_->Checksum(), at_four) << "replayed steps end where the first pass did";
}

TEST_F(ParamStateCheckpointTest, LoadDropsTheOpenStepsContributions) {
  Step(1);
  const std::string saved = *state_->SaveState();
  std::vector<float> grad(kSize, 0.5f);
  ASSERT_TRUE(state_->AddContribution(0, grad.data()).ok());
  ASSERT_TRUE(state_->LoadState(1, saved).ok());
  EXPECT_EQ(state_->contributions(), 0);
  EXPECT_TRUE(state_->AddContribution(0, grad.data()).ok()) << "micro-batch 0 may contribute again after a restore";
}

// A failover drops the open step, finalized or not, and keeps weights, moments and
// version: the step redone from scratch ends where it would have.
TEST_F(ParamStateCheckpointTest, DroppingTheOpenStepKeepsTheStateAndLetsTheStepBeRedone) {
  Step(1);
  const uint64_t at_one = *state_->Checksum();
  const std::string saved = *state_->SaveState();
  Step(2);
  const uint64_t at_two = *state_->Checksum();
  ASSERT_TRUE(state_->LoadState(1, saved).ok());
  std::vector<float> grad(kSize, 0.5f);
  for (int m = 0; m < kMicroBatches; ++m) ASSERT_TRUE(state_->AddContribution(m, grad.data()).ok());
  ASSERT_TRUE(state_->Finalize().ok());
  state_->DropOpenStep();
  EXPECT_EQ(state_->version(), 1u);
  EXPECT_EQ(state_->contributions(), 0);
  EXPECT_FALSE(state_->finalized());
  EXPECT_EQ(*state_->Checksum(), at_one) << "weights and moments untouched";
  Step(2);
  EXPECT_EQ(*state_->Checksum(), at_two) << "the redone step ends bit for bit where the first did";
}

TEST_F(ParamStateCheckpointTest, WrongSizeIsRefusedAndChangesNothing) {
  Step(1);
  const uint64_t before = *state_->Checksum();
  const std::string saved = *state_->SaveState();
  absl::Status s = state_->LoadState(7, saved.substr(4));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(state_->version(), 1u);
  EXPECT_EQ(*state_->Checksum(), before);
}

// A checkpoint whose values are not all finite (a NaN in the second moment, an Inf in
// the weights) would poison every later step: refused, the current state kept.
TEST_F(ParamStateCheckpointTest, NonFiniteStateIsRefusedAndChangesNothing) {
  Step(1);
  const uint64_t before = *state_->Checksum();
  const std::string saved = *state_->SaveState();
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
    for (size_t at : {size_t{0}, saved.size() - sizeof(float)}) {
      std::string poisoned = saved;
      std::memcpy(poisoned.data() + at, &bad, sizeof(float));
      absl::Status s = state_->LoadState(7, poisoned);
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
      EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("not finite"));
      EXPECT_EQ(state_->version(), 1u);
      EXPECT_EQ(*state_->Checksum(), before);
    }
  }
}

}  // namespace
}  // namespace sy::expert_host
