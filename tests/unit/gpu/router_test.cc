// Router semantics: top-1 with lowest-index ties, capacity admitted in token order
// with exact drop counts, packed bucket rows, and the lb / z loss values.
#include <cmath>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/model/config.h"
#include "gtest/gtest.h"

namespace sy::gpu {
namespace {

TEST(RouterTest, CapacityAdmitsInTokenOrder) {
  auto be = CreateCpuBackend(BackendOptions{2});
  // 10 tokens, 3 experts, capacity factor 1.0: capacity = ceil(10/3) = 4.
  const std::vector<int32_t> expert = {0, 0, 2, 0, 0, 0, 1, 0, 2, 1};
  ModelConfig cfg;
  cfg.experts = 3;
  const int capacity = cfg.Capacity(10, 1.0f);
  ASSERT_EQ(capacity, 4);
  std::vector<int32_t> row(10), counts(3), kept(3);
  be->RouterAssign(row.data(), counts.data(), kept.data(), expert.data(), 10, 3, capacity);
  EXPECT_EQ(counts, (std::vector<int32_t>{6, 2, 2}));
  EXPECT_EQ(kept, (std::vector<int32_t>{4, 2, 2}));
  // Expert 0 holds tokens 0,1,3,4 (rows 0-3); tokens 5 and 7 are dropped; expert 1's
  // bucket starts at row 4 (tokens 6, 9), expert 2's at row 6 (tokens 2, 8).
  EXPECT_EQ(row, (std::vector<int32_t>{0, 1, 6, 2, 3, -1, 4, -1, 7, 5}));
}

TEST(RouterTest, CapacityRoundsUp) {
  ModelConfig cfg;
  cfg.experts = 4;
  EXPECT_EQ(cfg.Capacity(10, 1.25f), 4);  // ceil(3.125)
  EXPECT_EQ(cfg.Capacity(16, 1.0f), 4);
  EXPECT_EQ(cfg.Capacity(16, 2.0f), 8);
}

TEST(RouterTest, Top1TiesGoToLowestIndex) {
  auto be = CreateCpuBackend(BackendOptions{1});
  const std::vector<float> logits = {1, 3, 3, 0,   // tie between 1 and 2
                                     5, 5, 5, 5,   // all equal
                                     0, 0, 0, 2};
  std::vector<float> probs(12), gate(3);
  std::vector<int32_t> expert(3);
  be->RouterSoftmaxTop1(probs.data(), expert.data(), gate.data(), logits.data(), 3, 4);
  EXPECT_EQ(expert, (std::vector<int32_t>{1, 0, 3}));
  EXPECT_FLOAT_EQ(gate[1], 0.25f);
  const double z = std::exp(2.0) + 3;
  EXPECT_NEAR(gate[2], std::exp(2.0) / z, 1e-7);
}

TEST(RouterTest, LoadBalanceAndZLossValues) {
  auto be = CreateCpuBackend(BackendOptions{1});
  // 4 tokens, 2 experts; logits chosen by hand.
  const std::vector<float> logits = {2, 0, 1, 1, 0, 3, 0.5f, 0};
  const int N = 4, E = 2;
  std::vector<float> probs(N * E), gate(N), losses(2);
  std::vector<int32_t> expert(N), row(N), counts(E), kept(E);
  be->RouterSoftmaxTop1(probs.data(), expert.data(), gate.data(), logits.data(), N, E);
  be->RouterAssign(row.data(), counts.data(), kept.data(), expert.data(), N, E, 2);
  EXPECT_EQ(counts, (std::vector<int32_t>{3, 1}));  // argmax 0, 0 (tie), 1, 0
  be->RouterLosses(losses.data(), probs.data(), logits.data(), counts.data(), N, E, 0.01f, 0.001f);
  auto sig = [](double a) { return 1 / (1 + std::exp(-a)); };
  const double p0[4] = {sig(2), 0.5, sig(-3), sig(0.5)};
  const double P0 = (p0[0] + p0[1] + p0[2] + p0[3]) / 4, P1 = 1 - P0;
  const double lb = 0.01 * 2 * (0.75 * P0 + 0.25 * P1);
  double z = 0;
  for (int n = 0; n < N; ++n) {
    const double lse = std::log(std::exp(logits[2 * n]) + std::exp(logits[2 * n + 1]));
    z += lse * lse;
  }
  EXPECT_NEAR(losses[0], lb, 1e-7);
  EXPECT_NEAR(losses[1], 0.001 * z / N, 1e-8);
  // A perfectly balanced router with uniform probabilities scores alpha * E * E * (1/E)^2 = alpha.
  const std::vector<float> flat(8, 0.0f);
  const std::vector<int32_t> even = {2, 2};
  be->RouterSoftmaxTop1(probs.data(), expert.data(), gate.data(), flat.data(), N, E);
  be->RouterLosses(losses.data(), probs.data(), flat.data(), even.data(), N, E, 0.01f, 0.0f);
  EXPECT_NEAR(losses[0], 0.01, 1e-8);
  EXPECT_EQ(losses[1], 0.0f);
}

}  // namespace
}  // namespace sy::gpu
