// The CUDA backend against the CPU reference. Without a GPU (or without a CUDA
// build) asking for cuda:N must be a clear error status, never a crash; with a
// GPU, ops on random inputs must match the CPU backend (dropout masks and
// routing decisions exactly, floating-point results to 1e-4 relative).
#include <cmath>
#include <cstring>
#include <iterator>
#include <memory>
#include <vector>

#include "gpu/backend.h"
#include "gtest/gtest.h"

namespace sy::gpu {
namespace {

std::vector<float> Random(size_t n, uint32_t salt, float scale = 1.0f) {
  const CounterRng rng(99, RngStream::kInit, salt);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * (2.0f * rng.Uniform(i) - 1.0f);
  return v;
}

// A host vector mirrored on one backend.
template <typename T>
class Buffer {
 public:
  Buffer(Backend* backend, const std::vector<T>& host) : backend_(backend), size_(host.size()) {
    ptr_ = static_cast<T*>(backend->Alloc(host.size() * sizeof(T)).value());
    EXPECT_TRUE(backend->CopyHostToDevice(ptr_, host.data(), host.size() * sizeof(T)).ok());
  }
  ~Buffer() { backend_->Free(ptr_); }
  T* get() const { return ptr_; }
  std::vector<T> Host() const {
    std::vector<T> host(size_);
    EXPECT_TRUE(backend_->CopyDeviceToHost(host.data(), ptr_, size_ * sizeof(T)).ok());
    return host;
  }

 private:
  Backend* backend_;
  size_t size_;
  T* ptr_;
};

void ExpectClose(const std::vector<float>& cpu, const std::vector<float>& cuda, const char* what) {
  ASSERT_EQ(cpu.size(), cuda.size()) << what;
  double worst = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    worst = std::max(worst, std::abs(cpu[i] - cuda[i]) / std::max(1e-2, std::abs(static_cast<double>(cpu[i]))));
  }
  EXPECT_LE(worst, 1e-4) << what << ": largest relative difference " << worst;
}

TEST(CudaBackendTest, MissingDeviceIsAClearError) {
  absl::StatusOr<std::unique_ptr<Backend>> b = CreateBackend(Device::Cuda(63));
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(b.status().code() == absl::StatusCode::kFailedPrecondition ||
              b.status().code() == absl::StatusCode::kUnimplemented)
      << b.status();
  EXPECT_NE(b.status().message().find("cuda"), std::string::npos) << b.status();
}

class CudaVsCpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Backend>> cuda = CreateBackend(Device::Cuda(0));
    if (!cuda.ok()) {
      EXPECT_TRUE(cuda.status().code() == absl::StatusCode::kFailedPrecondition ||
                  cuda.status().code() == absl::StatusCode::kUnimplemented)
          << cuda.status();
      GTEST_SKIP() << "no CUDA device here: " << cuda.status();
    }
    cuda_ = *std::move(cuda);
    cpu_ = CreateBackend(Device::Cpu()).value();
  }
  std::unique_ptr<Backend> cpu_, cuda_;
};

TEST_F(CudaVsCpuTest, SgemmAllTransposes) {
  const int m = 37, n = 29, k = 53;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const std::vector<float> a = Random(m * k, 1), b = Random(k * n, 2), c = Random(m * n, 3);
      std::vector<std::vector<float>> out;
      for (Backend* be : {cpu_.get(), cuda_.get()}) {
        Buffer<float> da(be, a), db(be, b), dc(be, c);
        be->Sgemm(dc.get(), da.get(), db.get(), m, n, k, ta, tb, 0.7f, 0.3f, ta ? m : k, tb ? k : n, n);
        out.push_back(dc.Host());
      }
      ExpectClose(out[0], out[1], "sgemm");
    }
  }
}

TEST_F(CudaVsCpuTest, LayerNormSoftmaxCrossEntropyAndAttention) {
  const int B = 2, T = 7, C = 24, NH = 3, V = 256, N = B * T;
  const std::vector<float> x = Random(N * C, 4), w = Random(C, 5), bias = Random(C, 6);
  const std::vector<float> logits = Random(N * V, 7, 3.0f), qkv = Random(N * 3 * C, 8);
  std::vector<int32_t> targets(N);
  for (int i = 0; i < N; ++i) targets[i] = (i * 37) % V;
  std::vector<std::vector<float>> ln, loss, att_out;
  for (Backend* be : {cpu_.get(), cuda_.get()}) {
    Buffer<float> dx(be, x), dw(be, w), db(be, bias), out(be, std::vector<float>(N * C)),
        mean(be, std::vector<float>(N)), rstd(be, std::vector<float>(N));
    be->LayerNormForward(out.get(), mean.get(), rstd.get(), dx.get(), dw.get(), db.get(), N, C);
    ln.push_back(out.Host());
    Buffer<float> dl(be, logits), probs(be, std::vector<float>(N * V)), losses(be, std::vector<float>(N));
    Buffer<int32_t> dt(be, targets);
    be->SoftmaxCrossEntropyForward(losses.get(), probs.get(), dl.get(), dt.get(), N, V);
    loss.push_back(losses.Host());
    Buffer<float> inp(be, qkv), y(be, std::vector<float>(N * C)), qkvr(be, std::vector<float>(3 * N * C)),
        att(be, std::vector<float>(B * NH * T * T));
    be->AttentionForward(y.get(), qkvr.get(), att.get(), inp.get(), B, T, C, NH);
    att_out.push_back(y.Host());
  }
  ExpectClose(ln[0], ln[1], "layernorm");
  ExpectClose(loss[0], loss[1], "cross-entropy");
  ExpectClose(att_out[0], att_out[1], "attention");
}

TEST_F(CudaVsCpuTest, DropoutMasksAndRoutingAreIdentical) {
  const int N = 300, E = 8, n = 5000;
  const std::vector<float> x = Random(n, 9), logits = Random(N * E, 10, 2.0f);
  RngKey key;
  key.seed = 42;
  key.a = 3;
  key.offset = 17;
  std::vector<std::vector<float>> dropped;
  std::vector<std::vector<int32_t>> rows;
  for (Backend* be : {cpu_.get(), cuda_.get()}) {
    Buffer<float> in(be, x), out(be, std::vector<float>(n));
    be->DropoutForward(out.get(), in.get(), n, 0.3f, key);
    dropped.push_back(out.Host());
    Buffer<float> dl(be, logits), probs(be, std::vector<float>(N * E)), gate(be, std::vector<float>(N));
    Buffer<int32_t> expert(be, std::vector<int32_t>(N)), row(be, std::vector<int32_t>(N)),
        counts(be, std::vector<int32_t>(E)), kept(be, std::vector<int32_t>(E));
    be->RouterSoftmaxTop1(probs.get(), expert.get(), gate.get(), dl.get(), N, E);
    be->RouterAssign(row.get(), counts.get(), kept.get(), expert.get(), N, E, /*capacity=*/30);
    rows.push_back(row.Host());
  }
  for (int i = 0; i < n; ++i) ASSERT_EQ(dropped[0][i] == 0.0f, dropped[1][i] == 0.0f) << "mask differs at " << i;
  ExpectClose(dropped[0], dropped[1], "dropout");
  EXPECT_EQ(rows[0], rows[1]);
}

// The rounding of the bf16 wire and trees: the same bits on both (specials included).
TEST_F(CudaVsCpuTest, Bf16RoundingGivesTheSameBits) {
  std::vector<float> x = Random(10000, 19, 1e4f);
  const uint32_t specials[] = {0x7f800000u, 0xff800000u, 0x7fc00001u, 0x7f800001u, 0x7f7fffffu,
                               0x00000001u, 0x3f808000u, 0x3f818000u, 0x80000000u};
  for (size_t i = 0; i < std::size(specials); ++i) std::memcpy(&x[i], &specials[i], sizeof(float));
  std::vector<std::vector<uint32_t>> bits;
  for (Backend* be : {cpu_.get(), cuda_.get()}) {
    Buffer<float> buffer(be, x);
    be->RoundToBf16(buffer.get(), static_cast<int64_t>(x.size()));
    const std::vector<float> rounded = buffer.Host();
    bits.emplace_back(rounded.size());
    std::memcpy(bits.back().data(), rounded.data(), rounded.size() * sizeof(float));
  }
  EXPECT_EQ(bits[0], bits[1]);
}

TEST_F(CudaVsCpuTest, BackwardOpsRouterLossesAndOptimizer) {
  const int B = 2, T = 6, C = 16, NH = 2, N = B * T, E = 4, V = 256;
  const std::vector<float> x = Random(N * C, 11), dy = Random(N * C, 12), w = Random(C, 13);
  const std::vector<float> qkv = Random(N * 3 * C, 14), logits = Random(N * E, 15, 2.0f), dgate = Random(N, 16);
  const std::vector<float> param = Random(N * C, 17), grad = Random(N * C, 18, 0.1f);
  std::vector<int32_t> tokens(N);
  for (int i = 0; i < N; ++i) tokens[i] = (i * 7) % 5;  // repeated tokens: summed in order
  std::vector<std::vector<float>> results[2];
  double sum_squares[2];
  for (int side = 0; side < 2; ++side) {
    Backend* be = side == 0 ? cpu_.get() : cuda_.get();
    std::vector<std::vector<float>>& r = results[side];
    // layernorm backward (accumulating into non-zero gradients)
    Buffer<float> dx(be, x), dw(be, w), zero_b(be, std::vector<float>(C)), out(be, std::vector<float>(N * C)),
        mean(be, std::vector<float>(N)), rstd(be, std::vector<float>(N)), ddy(be, dy), dinp(be, Random(N * C, 19)),
        dweight(be, Random(C, 20)), dbias(be, Random(C, 21));
    be->LayerNormForward(out.get(), mean.get(), rstd.get(), dx.get(), dw.get(), zero_b.get(), N, C);
    be->LayerNormBackward(dinp.get(), dweight.get(), dbias.get(), ddy.get(), dx.get(), dw.get(), mean.get(),
                          rstd.get(), N, C);
    r.push_back(dinp.Host());
    r.push_back(dweight.Host());
    r.push_back(dbias.Host());
    // embedding backward, bias backward
    Buffer<int32_t> tok(be, tokens);
    Buffer<float> dwte(be, std::vector<float>(V * C)), dwpe(be, std::vector<float>(T * C)), db(be, w);
    be->EncoderBackward(dwte.get(), dwpe.get(), ddy.get(), tok.get(), B, T, C);
    be->BiasBackward(db.get(), ddy.get(), N, C);
    r.push_back(dwte.Host());
    r.push_back(dwpe.Host());
    r.push_back(db.Host());
    // attention backward
    Buffer<float> inp(be, qkv), y(be, std::vector<float>(N * C)), qkvr(be, std::vector<float>(3 * N * C)),
        att(be, std::vector<float>(B * NH * T * T)), dqkv(be, std::vector<float>(N * 3 * C)),
        dqkvr(be, std::vector<float>(3 * N * C)), datt(be, std::vector<float>(B * NH * T * T)),
        dvaccum(be, std::vector<float>(N * C));
    be->AttentionForward(y.get(), qkvr.get(), att.get(), inp.get(), B, T, C, NH);
    be->AttentionBackward(dqkv.get(), dqkvr.get(), datt.get(), dvaccum.get(), ddy.get(), inp.get(), qkvr.get(),
                          att.get(), B, T, C, NH);
    r.push_back(dqkv.Host());
    // router losses and backward
    Buffer<float> dl(be, logits), probs(be, std::vector<float>(N * E)), gate(be, std::vector<float>(N)),
        losses(be, std::vector<float>(2)), dlogits(be, std::vector<float>(N * E)), dg(be, dgate);
    Buffer<int32_t> expert(be, std::vector<int32_t>(N)), row(be, std::vector<int32_t>(N)),
        counts(be, std::vector<int32_t>(E)), kept(be, std::vector<int32_t>(E));
    be->RouterSoftmaxTop1(probs.get(), expert.get(), gate.get(), dl.get(), N, E);
    be->RouterAssign(row.get(), counts.get(), kept.get(), expert.get(), N, E, 2);
    be->RouterLosses(losses.get(), probs.get(), dl.get(), counts.get(), N, E, 0.01f, 0.001f);
    be->RouterBackward(dlogits.get(), dg.get(), probs.get(), dl.get(), expert.get(), counts.get(), N, E, 0.01f,
                       0.001f, 0.5f);
    r.push_back(losses.Host());
    r.push_back(dlogits.Host());
    // combine backward on the admitted rows
    Buffer<float> buckets(be, Random(N * C, 22)), dbuckets(be, std::vector<float>(N * C)),
        dgate_out(be, std::vector<float>(N));
    be->CombineBackward(dbuckets.get(), dgate_out.get(), ddy.get(), buckets.get(), row.get(), gate.get(), N, C);
    r.push_back(dgate_out.Host());
    // AdamW step 3 and the sum of squares
    Buffer<float> p(be, param), m(be, Random(N * C, 23, 0.01f)), v(be, std::vector<float>(N * C, 0.001f)),
        g(be, grad);
    be->AdamWUpdate(p.get(), m.get(), v.get(), g.get(), N * C, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 3);
    r.push_back(p.Host());
    sum_squares[side] = be->SumSquares(g.get(), N * C).value();
  }
  const char* names[] = {"layernorm dinp", "layernorm dweight", "layernorm dbias", "dwte", "dwpe", "dbias",
                         "attention dinp", "router losses", "router dlogits", "combine dgate", "adamw param"};
  for (size_t i = 0; i < results[0].size(); ++i) ExpectClose(results[0][i], results[1][i], names[i]);
  EXPECT_NEAR(sum_squares[0], sum_squares[1], 1e-9 * sum_squares[0]);
}

}  // namespace
}  // namespace sy::gpu
