// The fixed pairwise gradient tree: bit-identical to the recursive definition for
// every arrival order, subtrees may arrive pre-summed, bad calls are refused.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/model/grad_tree.h"
#include "gtest/gtest.h"

namespace sy::gpu {
namespace {

// Values of wildly different magnitudes so that float association matters.
std::vector<std::vector<float>> MakeGrads(int M, int size) {
  std::mt19937 gen(M * 7919);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<std::vector<float>> g(M, std::vector<float>(size));
  for (int m = 0; m < M; ++m) {
    for (int i = 0; i < size; ++i) g[m][i] = u(gen) * std::pow(10.0f, static_cast<float>((m * 3 + i) % 9) - 4);
  }
  return g;
}

// The spec's definition: sum[lo, hi) = sum[lo, lo+h) + sum[lo+h, hi), h the largest power of two < n.
std::vector<float> Recursive(const std::vector<std::vector<float>>& g, int lo, int hi) {
  if (hi - lo == 1) return g[lo];
  int h = 1;
  while (h * 2 < hi - lo) h *= 2;
  auto a = Recursive(g, lo, lo + h), b = Recursive(g, lo + h, hi);
  for (size_t i = 0; i < a.size(); ++i) a[i] = a[i] + b[i];
  return a;
}

std::vector<float> Sequential(const std::vector<std::vector<float>>& g) {
  std::vector<float> s(g[0]);
  for (size_t m = 1; m < g.size(); ++m) {
    for (size_t i = 0; i < s.size(); ++i) s[i] += g[m][i];
  }
  return s;
}

TEST(GradTreeTest, EveryArrivalOrderGivesTheRecursiveSumBitForBit) {
  auto be = CreateCpuBackend(BackendOptions{2});
  const int size = 257;
  bool association_matters = false;
  for (int M : {1, 2, 3, 5, 7, 8, 12, 13}) {
    const auto g = MakeGrads(M, size);
    const auto expect = Recursive(g, 0, M);
    association_matters |= M > 2 && Sequential(g) != expect;
    std::vector<int> order(M);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937 gen(M);
    auto tree = GradTree::Create(be.get(), size, M).value();
    for (int trial = 0; trial < 6; ++trial) {
      if (trial > 0) std::shuffle(order.begin(), order.end(), gen);
      tree->Reset();
      for (int i = 0; i < M; ++i) {
        EXPECT_FALSE(tree->complete());
        ASSERT_TRUE(tree->Add(order[i], g[order[i]].data()).ok());
      }
      ASSERT_TRUE(tree->complete());
      const float* sum = tree->Result().value();
      EXPECT_EQ(std::memcmp(sum, expect.data(), size * sizeof(float)), 0) << "M=" << M << " trial " << trial;
    }
  }
  EXPECT_TRUE(association_matters) << "test data too tame: a running sum would pass too";
}

TEST(GradTreeTest, InOrderArrivalUsesLogarithmicBuffers) {
  auto be = CreateCpuBackend(BackendOptions{1});
  const int M = 64;
  const auto g = MakeGrads(M, 8);
  auto tree = GradTree::Create(be.get(), 8, M).value();
  for (int m = 0; m < M; ++m) ASSERT_TRUE(tree->Add(m, g[m].data()).ok());
  EXPECT_LE(tree->peak_buffers(), 8);  // log2(64) + 2
}

TEST(GradTreeTest, PreSummedSubtreeEqualsItsLeaves) {
  auto be = CreateCpuBackend(BackendOptions{1});
  const int M = 6, size = 33;  // tree: [0,4) = ([0,2)+[2,4)), [4,6)
  const auto g = MakeGrads(M, size);
  const auto expect = Recursive(g, 0, M);
  const auto sub = Recursive(g, 0, 4);
  auto tree = GradTree::Create(be.get(), size, M).value();
  ASSERT_TRUE(tree->Add(5, g[5].data()).ok());
  ASSERT_TRUE(tree->AddRange(0, 4, sub.data()).ok());
  ASSERT_TRUE(tree->Add(4, g[4].data()).ok());
  EXPECT_EQ(std::memcmp(tree->Result().value(), expect.data(), size * sizeof(float)), 0);
}

TEST(GradTreeTest, RefusesBadCalls) {
  auto be = CreateCpuBackend(BackendOptions{1});
  std::vector<float> g(4, 1.0f);
  EXPECT_EQ(GradTree::Create(be.get(), 4, 0).status().code(), absl::StatusCode::kInvalidArgument);
  auto tree = GradTree::Create(be.get(), 4, 5).value();
  EXPECT_EQ(tree->Add(5, g.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tree->Add(-1, g.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tree->AddRange(1, 3, g.data()).code(), absl::StatusCode::kInvalidArgument);  // not a node
  EXPECT_EQ(tree->Result().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(tree->Add(2, g.data()).ok());
  EXPECT_EQ(tree->Add(2, g.data()).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(tree->AddRange(2, 4, g.data()).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(GradTree::IsNode(0, 4, 5));
  EXPECT_TRUE(GradTree::IsNode(4, 5, 5));
  EXPECT_FALSE(GradTree::IsNode(2, 5, 5));
}


TEST(GradTreeTest, CoverIsTheFewestNodesThatMakeARange) {
  for (int M = 1; M <= 13; ++M) {
    for (int lo = 0; lo <= M; ++lo) {
      for (int hi = lo; hi <= M; ++hi) {
        const auto nodes = GradTree::Cover(lo, hi, M);
        int at = lo;
        for (size_t i = 0; i < nodes.size(); ++i) {
          const auto [a, b] = nodes[i];
          EXPECT_EQ(a, at) << "M=" << M << " [" << lo << "," << hi << ")";
          EXPECT_TRUE(GradTree::IsNode(a, b, M)) << "[" << a << "," << b << ") of M=" << M;
          if (i > 0) {
            EXPECT_FALSE(GradTree::IsNode(nodes[i - 1].first, b, M)) << "two siblings left unmerged";
          }
          at = b;
        }
        EXPECT_EQ(at, hi) << "M=" << M << " [" << lo << "," << hi << ")";
      }
    }
  }
  EXPECT_EQ(GradTree::Cover(0, 3, 6), (std::vector<std::pair<int, int>>{{0, 2}, {2, 3}}));
  EXPECT_EQ(GradTree::Cover(2, 4, 4), (std::vector<std::pair<int, int>>{{2, 4}}));
}

// A trainer pre-sums the micro-batches of node [lo, hi) in a tree of its own over
// hi - lo leaves: the subtree has that shape, so the sum has the node's bits.
TEST(GradTreeTest, ATreeOverANodesLeavesSumsThemAsTheNode) {
  auto be = CreateCpuBackend(BackendOptions{1});
  const int M = 13, size = 65;
  const auto g = MakeGrads(M, size);
  for (int lo = 0; lo < M; ++lo) {
    for (int hi = lo + 1; hi <= M; ++hi) {
      if (!GradTree::IsNode(lo, hi, M)) continue;
      auto local = GradTree::Create(be.get(), size, hi - lo).value();
      for (int m = lo; m < hi; ++m) ASSERT_TRUE(local->Add(m - lo, g[m].data()).ok());
      const auto expect = Recursive(g, lo, hi);
      EXPECT_EQ(std::memcmp(local->Result().value(), expect.data(), size * sizeof(float)), 0)
          << "[" << lo << "," << hi << ")";
    }
  }
}

}  // namespace
}  // namespace sy::gpu
