// --dense_wire_dtype=bf16's arithmetic: a GradTree with bf16 ranges rounds every value
// that enters and every sum it forms there (and nothing elsewhere), so any split of the
// micro-batches into pre-summed nodes gives the same bits, each node exact in bf16; and
// which parameters travel in bf16 (every dense one but the router's).
#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/model/config.h"
#include "gpu/model/grad_tree.h"
#include "gpu/model/optimizer.h"
#include "gpu/tensor.h"
#include "gtest/gtest.h"

namespace sy::gpu {
namespace {

constexpr int kSize = 96;
const std::vector<std::pair<int64_t, int64_t>> kRounded = {{0, 40}, {64, 96}};  // [40, 64) stays f32

std::vector<std::vector<float>> MakeGrads(int M) {
  std::mt19937 gen(M * 31 + 7);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<std::vector<float>> g(M, std::vector<float>(kSize));
  for (auto& v : g) {
    for (int i = 0; i < kSize; ++i) v[i] = u(gen) * std::pow(10.0f, static_cast<float>(i % 5) - 2);
  }
  return g;
}

bool Rounded(int64_t i) {
  for (const auto& [a, b] : kRounded) {
    if (i >= a && i < b) return true;
  }
  return false;
}

// The definition: leaves rounded, sum[lo, hi) = round(sum[lo, lo+h) + sum[lo+h, hi)) where rounded.
std::vector<float> Reference(const std::vector<std::vector<float>>& g, int lo, int hi) {
  std::vector<float> out(kSize);
  if (hi - lo == 1) {
    for (int i = 0; i < kSize; ++i) out[i] = Rounded(i) ? RoundToBf16(g[lo][i]) : g[lo][i];
    return out;
  }
  const int mid = GradTree::Split(lo, hi);
  const auto a = Reference(g, lo, mid), b = Reference(g, mid, hi);
  for (int i = 0; i < kSize; ++i) out[i] = Rounded(i) ? RoundToBf16(a[i] + b[i]) : a[i] + b[i];
  return out;
}

std::unique_ptr<GradTree> RoundingTree(Backend* be, int M) {
  auto tree = GradTree::Create(be, kSize, M).value();
  tree->set_bf16_ranges(kRounded);
  return tree;
}

TEST(Bf16GradTreeTest, EverySplitIntoPreSummedNodesGivesTheSameBits) {
  auto be = CreateCpuBackend(BackendOptions{1});
  bool rounding_matters = false;
  for (int M : {1, 2, 3, 4, 5, 8}) {
    const auto g = MakeGrads(M);
    const auto expect = Reference(g, 0, M);
    // Whole, leaf by leaf.
    auto whole = RoundingTree(be.get(), M);
    for (int m = M - 1; m >= 0; --m) ASSERT_TRUE(whole->Add(m, g[m].data()).ok());
    const float* sum = whole->Result().value();
    ASSERT_EQ(std::memcmp(sum, expect.data(), kSize * sizeof(float)), 0) << "M=" << M;
    for (int i = 0; i < kSize; ++i) {
      if (Rounded(i)) {
        EXPECT_EQ(sum[i], RoundToBf16(sum[i])) << "element " << i << " is exact in bf16";
      }
    }
    // Every split of [0, M) into trainers' consecutive shares, each pre-summed per node.
    for (int cut = 1; cut < M; ++cut) {
      auto host = RoundingTree(be.get(), M);
      for (auto [lo, hi] : {std::pair<int, int>{0, cut}, std::pair<int, int>{cut, M}}) {
        for (const auto& [a, b] : GradTree::Cover(lo, hi, M)) {
          auto node = RoundingTree(be.get(), b - a);
          for (int m = a; m < b; ++m) ASSERT_TRUE(node->Add(m - a, g[m].data()).ok());
          ASSERT_TRUE(host->AddRange(a, b, node->Result().value()).ok());
        }
      }
      EXPECT_EQ(std::memcmp(host->Result().value(), expect.data(), kSize * sizeof(float)), 0)
          << "M=" << M << " split at " << cut;
    }
    // Without ranges nothing is rounded: the f32 tree differs where the ranges are.
    auto plain = GradTree::Create(be.get(), kSize, M).value();
    for (int m = 0; m < M; ++m) ASSERT_TRUE(plain->Add(m, g[m].data()).ok());
    const float* f32 = plain->Result().value();
    for (int i = 40; i < 64; ++i) EXPECT_EQ(f32[i], sum[i]) << "element " << i << " is outside the ranges";
    for (int i = 0; i < kSize; ++i) rounding_matters |= f32[i] != sum[i];
  }
  EXPECT_TRUE(rounding_matters);
}

TEST(Bf16GradTreeTest, EveryDenseParameterButTheRoutersTravelsInBf16) {
  ModelConfig config;
  config.layers = 2;
  config.moe_every = 2;
  const std::vector<ParamInfo> infos = ParamInfos(config);
  const auto ranges = Bf16DenseWireRanges(infos);
  int64_t rounded = 0;
  for (const auto& [a, b] : ranges) rounded += b - a;
  int64_t dense = 0, router = 0;
  for (const ParamInfo& info : infos) {
    const bool is_router = info.name.find("router_w") != std::string::npos;
    EXPECT_EQ(OnBf16DenseWire(info), !IsExpertParam(info) && !is_router) << info.name;
    if (!IsExpertParam(info)) dense += info.numel;
    if (is_router) router += info.numel;
  }
  EXPECT_GT(router, 0);
  EXPECT_EQ(rounded, dense - router);
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_GE(ranges[i].first, ranges[i - 1].second);
}

}  // namespace
}  // namespace sy::gpu
