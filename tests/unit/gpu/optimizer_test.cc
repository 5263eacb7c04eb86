// AdamW against hand-computed values, the gradient norm and clipping, and the LR schedule.
#include <cmath>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/model/optimizer.h"
#include "gtest/gtest.h"

namespace sy::gpu {
namespace {

std::vector<ParamInfo> TinyLayout() {
  return {ParamInfo{"w", {1}, 0, 1, true}, ParamInfo{"b", {1}, 1, 1, false}};
}

TEST(AdamWTest, TwoStepsMatchHandComputedValues) {
  auto be = CreateCpuBackend(BackendOptions{1});
  auto params = ParamBlock::Create(be.get(), TinyLayout()).value();
  auto grads = ParamBlock::Create(be.get(), TinyLayout()).value();
  ASSERT_TRUE(params->CopyFromHost({1.0f, 1.0f}).ok());
  AdamWConfig cfg;  // beta1 0.9, beta2 0.95, eps 1e-8, wd 0.1
  cfg.max_grad_norm = 0;  // no clipping here
  auto opt = AdamW::Create(*params, cfg).value();
  // Step 1, g = 0.5, lr 0.1: decay 1 -> 0.99 (w only); m = 0.05, v = 0.0125;
  // mhat = 0.5, vhat = 0.25, update = 0.1 * 0.5 / 0.5 = 0.1.
  ASSERT_TRUE(grads->CopyFromHost({0.5f, 0.5f}).ok());
  ASSERT_TRUE(opt->Step(params.get(), grads.get(), 0.1f).ok());
  std::vector<float> p;
  ASSERT_TRUE(params->CopyToHost(&p).ok());
  EXPECT_NEAR(p[0], 0.89, 1e-6);
  EXPECT_NEAR(p[1], 0.90, 1e-6);
  // Step 2, g = -0.25: m = 0.02, v = 0.015; mhat = 0.02/0.19, vhat = 0.015/0.0975;
  // update = 0.1 * 0.1052632 / 0.3922323 = 0.0268371.
  ASSERT_TRUE(grads->CopyFromHost({-0.25f, -0.25f}).ok());
  ASSERT_TRUE(opt->Step(params.get(), grads.get(), 0.1f).ok());
  ASSERT_TRUE(params->CopyToHost(&p).ok());
  EXPECT_NEAR(p[0], 0.89 * 0.99 - 0.0268371, 2e-6);
  EXPECT_NEAR(p[1], 0.90 - 0.0268371, 2e-6);
  EXPECT_EQ(opt->step(), 2);
  std::vector<float> m, v;
  ASSERT_TRUE(opt->m().CopyToHost(&m).ok());
  ASSERT_TRUE(opt->v().CopyToHost(&v).ok());
  EXPECT_NEAR(m[0], 0.02, 1e-7);
  EXPECT_NEAR(v[0], 0.015, 1e-7);
}

TEST(AdamWTest, RefusesMismatchedLayouts) {
  auto be = CreateCpuBackend(BackendOptions{1});
  auto params = ParamBlock::Create(be.get(), TinyLayout()).value();
  auto other = ParamBlock::Create(be.get(), {ParamInfo{"w", {3}, 0, 3, true}}).value();
  ASSERT_TRUE(params->CopyFromHost({1.0f, 2.0f}).ok());
  auto opt = AdamW::Create(*params, AdamWConfig{}).value();
  EXPECT_EQ(opt->Step(params.get(), other.get(), 0.1f).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(opt->step(), 0);
  std::vector<float> p;
  ASSERT_TRUE(params->CopyToHost(&p).ok());
  EXPECT_EQ(p, (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(params->CopyFromHost({1.0f}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(GradNormTest, IsTheL2NormAndLeavesTheGradients) {
  auto be = CreateCpuBackend(BackendOptions{1});
  auto grads = ParamBlock::Create(be.get(), TinyLayout()).value();
  ASSERT_TRUE(grads->CopyFromHost({3.0f, 4.0f}).ok());
  EXPECT_FLOAT_EQ(GradNorm(*grads).value(), 5.0f);
  std::vector<float> g;
  ASSERT_TRUE(grads->CopyToHost(&g).ok());
  EXPECT_EQ(g, (std::vector<float>{3.0f, 4.0f}));
}

// Clipping inside the update gives the bits of an unclipped update of gradients
// scaled beforehand, and only above max_grad_norm.
TEST(AdamWTest, ClipsInsideTheUpdateWithTheBitsOfScaledGradients) {
  auto be = CreateCpuBackend(BackendOptions{1});
  const std::vector<float> start = {1.0f, -0.5f}, raw = {3.0f, 4.0f};
  const float scale = ClipScale(5.0f, 1.0f);
  auto run = [&](float max_norm, std::vector<float> grad, std::vector<float>* out) {
    auto params = ParamBlock::Create(be.get(), TinyLayout()).value();
    auto grads = ParamBlock::Create(be.get(), TinyLayout()).value();
    ASSERT_TRUE(params->CopyFromHost(start).ok());
    AdamWConfig cfg;
    cfg.max_grad_norm = max_norm;
    auto opt = AdamW::Create(*params, cfg).value();
    for (int step = 0; step < 3; ++step) {
      ASSERT_TRUE(grads->CopyFromHost(grad).ok());
      ASSERT_TRUE(opt->Step(params.get(), grads.get(), 0.1f).ok());
      std::vector<float> left;
      ASSERT_TRUE(grads->CopyToHost(&left).ok());
      EXPECT_EQ(left, grad);  // the gradients themselves are not scaled
    }
    std::vector<float> v;
    ASSERT_TRUE(opt->v().CopyToHost(&v).ok());
    ASSERT_TRUE(params->CopyToHost(out).ok());
    out->insert(out->end(), v.begin(), v.end());
  };
  std::vector<float> clipped, prescaled, unclipped_big_max;
  run(1.0f, raw, &clipped);
  run(0.0f, {raw[0] * scale, raw[1] * scale}, &prescaled);
  EXPECT_EQ(clipped, prescaled);
  std::vector<float> unclipped;
  run(0.0f, raw, &unclipped);
  run(10.0f, raw, &unclipped_big_max);  // norm 5 < 10: no clipping
  EXPECT_EQ(unclipped_big_max, unclipped);
  EXPECT_NE(clipped, unclipped);
}

TEST(LearningRateTest, WarmupThenCosineToTenPercent) {
  EXPECT_FLOAT_EQ(LearningRate(0, 100, 10, 1.0f), 0.0f);
  EXPECT_FLOAT_EQ(LearningRate(5, 100, 10, 1.0f), 0.5f);
  EXPECT_FLOAT_EQ(LearningRate(10, 100, 10, 1.0f), 1.0f);
  EXPECT_NEAR(LearningRate(55, 100, 10, 1.0f), 0.55, 1e-6);
  EXPECT_NEAR(LearningRate(100, 100, 10, 1.0f), 0.1, 1e-7);
  EXPECT_NEAR(LearningRate(500, 100, 10, 1.0f), 0.1, 1e-7);
  EXPECT_GT(LearningRate(30, 100, 10, 1.0f), LearningRate(31, 100, 10, 1.0f));
}

}  // namespace
}  // namespace sy::gpu
