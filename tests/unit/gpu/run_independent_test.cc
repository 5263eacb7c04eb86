// The CPU backend's RunIndependent must not change a single bit: products run inside
// a task (whole, single-threaded) equal the same products run from outside (cut into
// blocks over the pool), for the expert FFN's shapes and the edges of the small-matrix
// range; and every task runs exactly once.
#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gtest/gtest.h"
#include "tests/unit/gpu/grad_check.h"

namespace sy::gpu {
namespace {

using testing::RandomVector;

struct Shape {
  int m, n, k;
  bool trans_a, trans_b;
};

TEST(RunIndependentTest, ProductsInsideTasksMatchProductsOutsideBitForBit) {
  auto backend = CreateCpuBackend(BackendOptions{2});
  std::vector<Shape> shapes;
  for (int rows : {1, 7, 64, 100, 129, 333, 512}) {
    for (auto [c, f] : {std::pair{128, 512}, std::pair{512, 2048}}) {
      shapes.push_back({rows, f, c, false, false});  // u · W_in
      shapes.push_back({rows, c, f, false, false});  // act · W_out
      shapes.push_back({rows, f, c, false, true});   // dout · W_out^T
      shapes.push_back({f, c, rows, true, false});   // act^T · dout
      shapes.push_back({c, f, rows, true, false});   // u^T · dact
    }
  }
  for (const Shape& s : shapes) {
    const int lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
    const std::vector<float> a = RandomVector(static_cast<size_t>(s.m) * s.k, 1),
                             b = RandomVector(static_cast<size_t>(s.k) * s.n, 2),
                             c0 = RandomVector(static_cast<size_t>(s.m) * s.n, 3);
    std::vector<float> outside = c0;
    backend->Sgemm(outside.data(), a.data(), b.data(), s.m, s.n, s.k, s.trans_a, s.trans_b, 1.0f, 1.0f, lda, ldb,
                   s.n);
    std::vector<std::vector<float>> inside(2, c0);
    backend->RunIndependent(2, [&](int64_t i) {
      backend->Sgemm(inside[i].data(), a.data(), b.data(), s.m, s.n, s.k, s.trans_a, s.trans_b, 1.0f, 1.0f, lda,
                     ldb, s.n);
    });
    for (const std::vector<float>& c : inside) {
      EXPECT_EQ(0, std::memcmp(c.data(), outside.data(), c.size() * sizeof(float)))
          << "m " << s.m << " n " << s.n << " k " << s.k << " trans_a " << s.trans_a << " trans_b " << s.trans_b;
    }
  }
}

TEST(RunIndependentTest, RunsEveryTaskOnce) {
  auto backend = CreateCpuBackend(BackendOptions{3});
  std::vector<std::atomic<int>> runs(11);
  backend->RunIndependent(11, [&](int64_t i) { runs[i].fetch_add(1); });
  for (const std::atomic<int>& r : runs) EXPECT_EQ(r.load(), 1);
}

}  // namespace
}  // namespace sy::gpu
