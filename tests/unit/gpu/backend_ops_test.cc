// Finite-difference gradient checks of every CPU backend layer op on tiny shapes,
// plus forward checks against naive loops (attention, dropout statistics).
#include <cmath>
#include <memory>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/model/layers.h"
#include "gtest/gtest.h"
#include "tests/unit/gpu/grad_check.h"

namespace sy::gpu {
namespace {

using testing::Dot;
using testing::ExpectDirectionalGrad;
using testing::RandomVector;

class BackendOpsTest : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> be_ = CreateCpuBackend(BackendOptions{2});
};

TEST_F(BackendOpsTest, LayerNormGradients) {
  const int N = 3, C = 8;
  auto x = RandomVector(N * C, 1, -2, 2), w = RandomVector(C, 2, 0.5, 1.5), b = RandomVector(C, 3);
  const auto dout = RandomVector(N * C, 4);
  auto f = [&](const std::vector<float>& xx, const std::vector<float>& ww, const std::vector<float>& bb) {
    std::vector<float> out(N * C), mean(N), rstd(N);
    be_->LayerNormForward(out.data(), mean.data(), rstd.data(), xx.data(), ww.data(), bb.data(), N, C);
    return Dot(out, dout);
  };
  std::vector<float> out(N * C), mean(N), rstd(N), dx(N * C, 0), dw(C, 0), db(C, 0);
  be_->LayerNormForward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
  for (int n = 0; n < N; ++n) {  // normalised rows: mean b, and the forward's stats
    double m = 0;
    for (int c = 0; c < C; ++c) m += x[n * C + c];
    EXPECT_NEAR(mean[n], m / C, 1e-6);
  }
  be_->LayerNormBackward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), mean.data(), rstd.data(),
                         N, C);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(v, w, b); }, x, dx, 10);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(x, v, b); }, w, dw, 11);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(x, w, v); }, b, db, 12);
}

TEST_F(BackendOpsTest, GeluMatchesTanhFormulaAndGradient) {
  const int n = 50;
  auto x = RandomVector(n, 5, -4, 4);
  const auto dout = RandomVector(n, 6);
  std::vector<float> out(n), dx(n);
  be_->GeluForward(out.data(), x.data(), n);
  for (int i = 0; i < n; ++i) {
    const double v = x[i];
    EXPECT_NEAR(out[i], 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))), 1e-6);
  }
  be_->GeluBackward(dx.data(), x.data(), dout.data(), n);
  ExpectDirectionalGrad(
      [&](const std::vector<float>& v) {
        std::vector<float> o(n);
        be_->GeluForward(o.data(), v.data(), n);
        return Dot(o, dout);
      },
      x, dx, 13);
}

TEST_F(BackendOpsTest, LinearGradients) {
  const int N = 4, IC = 5, OC = 3;
  auto x = RandomVector(N * IC, 7), w = RandomVector(IC * OC, 8), b = RandomVector(OC, 9);
  const auto dout = RandomVector(N * OC, 10);
  auto f = [&](const std::vector<float>& xx, const std::vector<float>& ww, const std::vector<float>& bb) {
    std::vector<float> out(N * OC);
    LinearForward(be_.get(), out.data(), xx.data(), ww.data(), bb.data(), N, IC, OC);
    return Dot(out, dout);
  };
  std::vector<float> dx(N * IC), dw(IC * OC, 0), db(OC, 0);
  LinearBackward(be_.get(), dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), N, IC, OC);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(v, w, b); }, x, dx, 14);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(x, v, b); }, w, dw, 15);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(x, w, v); }, b, db, 16);
}

// Naive causal attention for one (b, h): the reference the sgemm path must equal.
std::vector<float> NaiveAttention(const std::vector<float>& inp, int B, int T, int C, int NH) {
  const int hs = C / NH;
  std::vector<float> out(B * T * C, 0);
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      for (int t = 0; t < T; ++t) {
        const float* q = &inp[(b * T + t) * 3 * C + h * hs];
        std::vector<double> s(t + 1);
        double mx = -1e30, sum = 0;
        for (int j = 0; j <= t; ++j) {
          const float* k = &inp[(b * T + j) * 3 * C + C + h * hs];
          double d = 0;
          for (int i = 0; i < hs; ++i) d += static_cast<double>(q[i]) * k[i];
          s[j] = d / std::sqrt(static_cast<double>(hs));
          mx = std::max(mx, s[j]);
        }
        for (int j = 0; j <= t; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (int j = 0; j <= t; ++j) {
          const float* v = &inp[(b * T + j) * 3 * C + 2 * C + h * hs];
          for (int i = 0; i < hs; ++i) out[(b * T + t) * C + h * hs + i] += static_cast<float>(s[j] / sum * v[i]);
        }
      }
    }
  }
  return out;
}

TEST_F(BackendOpsTest, AttentionForwardMatchesNaiveAndGradient) {
  const int B = 2, T = 5, C = 8, NH = 2;
  auto inp = RandomVector(B * T * 3 * C, 17, -2, 2);
  const auto dout = RandomVector(B * T * C, 18);
  auto fwd = [&](const std::vector<float>& x, std::vector<float>* att) {
    std::vector<float> out(B * T * C);
    att->assign(B * NH * T * T, 0);
    be_->AttentionForward(out.data(), nullptr, att->data(), x.data(), B, T, C, NH);
    return out;
  };
  std::vector<float> att;
  const auto out = fwd(inp, &att);
  const auto ref = NaiveAttention(inp, B, T, C, NH);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], ref[i], 1e-5);
  std::vector<float> dinp(B * T * 3 * C), datt(B * NH * T * T);
  be_->AttentionBackward(dinp.data(), nullptr, datt.data(), nullptr, dout.data(), inp.data(), nullptr, att.data(), B,
                         T, C, NH);
  ExpectDirectionalGrad(
      [&](const std::vector<float>& x) {
        std::vector<float> a;
        return Dot(fwd(x, &a), dout);
      },
      inp, dinp, 19);
  // Causality: the future never influences the past.
  auto changed = inp;
  for (int c = 0; c < 3 * C; ++c) changed[(T - 1) * 3 * C + c] += 1.0f;  // last token of sequence 0
  const auto out2 = fwd(changed, &att);
  for (int i = 0; i < (T - 1) * C; ++i) EXPECT_EQ(out2[i], out[i]);
}

TEST_F(BackendOpsTest, SoftmaxCrossEntropyGradient) {
  const int N = 3, V = 7;
  auto logits = RandomVector(N * V, 20, -3, 3);
  const std::vector<int32_t> targets = {0, 6, 3};
  const float dloss = 0.5f;
  auto f = [&](const std::vector<float>& x) {
    std::vector<float> losses(N), probs(N * V);
    be_->SoftmaxCrossEntropyForward(losses.data(), probs.data(), x.data(), targets.data(), N, V);
    double s = 0;
    for (float l : losses) s += l * dloss;
    return s;
  };
  std::vector<float> losses(N), probs(N * V), dlogits(N * V);
  be_->SoftmaxCrossEntropyForward(losses.data(), probs.data(), logits.data(), targets.data(), N, V);
  double z = 0;
  for (int j = 0; j < V; ++j) z += std::exp(logits[j]);
  EXPECT_NEAR(losses[0], std::log(z) - logits[0], 1e-5);
  be_->SoftmaxCrossEntropyBackward(dlogits.data(), probs.data(), targets.data(), dloss, N, V);
  ExpectDirectionalGrad(f, logits, dlogits, 21);
}

TEST_F(BackendOpsTest, EncoderGradients) {
  const int B = 2, T = 3, C = 4, V = 5;
  const std::vector<int32_t> tokens = {1, 4, 1, 0, 1, 2};
  auto wte = RandomVector(V * C, 22), wpe = RandomVector(T * C, 23);
  const auto dout = RandomVector(B * T * C, 24);
  std::vector<float> dwte(V * C, 0), dwpe(T * C, 0);
  be_->EncoderBackward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, T, C);
  auto f = [&](const std::vector<float>& e, const std::vector<float>& p) {
    std::vector<float> out(B * T * C);
    be_->EncoderForward(out.data(), tokens.data(), e.data(), p.data(), B, T, C);
    return Dot(out, dout);
  };
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(v, wpe); }, wte, dwte, 25);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(wte, v); }, wpe, dwpe, 26);
}

TEST_F(BackendOpsTest, CombineAndDispatchGradients) {
  const int N = 5, C = 3;
  const std::vector<int32_t> row = {2, -1, 0, 1, -1};
  auto buckets = RandomVector(3 * C, 27), gate = RandomVector(N, 28, 0.1, 1);
  const auto dout = RandomVector(N * C, 29);
  auto f = [&](const std::vector<float>& bk, const std::vector<float>& g) {
    std::vector<float> out(N * C);
    be_->CombineForward(out.data(), bk.data(), row.data(), g.data(), N, C);
    return Dot(out, dout);
  };
  std::vector<float> dbuckets(3 * C), dgate(N);
  be_->CombineBackward(dbuckets.data(), dgate.data(), dout.data(), buckets.data(), row.data(), gate.data(), N, C);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(v, gate); }, buckets, dbuckets, 30);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(buckets, v); }, gate, dgate, 31);
  // Dispatch is a gather; its backward is the matching scatter with zeros for dropped tokens.
  auto inp = RandomVector(N * C, 32);
  std::vector<float> packed(3 * C, -7), dinp(N * C, -7);
  be_->DispatchForward(packed.data(), inp.data(), row.data(), N, C);
  for (int c = 0; c < C; ++c) {
    EXPECT_EQ(packed[2 * C + c], inp[0 * C + c]);
    EXPECT_EQ(packed[0 * C + c], inp[2 * C + c]);
  }
  be_->DispatchBackward(dinp.data(), packed.data(), row.data(), N, C);
  for (int c = 0; c < C; ++c) {
    EXPECT_EQ(dinp[1 * C + c], 0.0f);
    EXPECT_EQ(dinp[3 * C + c], inp[3 * C + c]);
  }
}

TEST_F(BackendOpsTest, RouterBackwardMatchesLossesAndGateGradient) {
  const int N = 6, E = 3;
  // Well separated logits so a small perturbation never changes the argmax.
  std::vector<float> logits = RandomVector(N * E, 33, -0.3, 0.3);
  for (int n = 0; n < N; ++n) logits[n * E + (n % E)] += 2.0f;
  const auto dgate = RandomVector(N, 34);
  const float alpha = 0.3f, beta = 0.2f;
  std::vector<float> probs(N * E), gate(N);
  std::vector<int32_t> expert(N), row(N), counts(E), kept(E);
  be_->RouterSoftmaxTop1(probs.data(), expert.data(), gate.data(), logits.data(), N, E);
  be_->RouterAssign(row.data(), counts.data(), kept.data(), expert.data(), N, E, N);
  auto f = [&](const std::vector<float>& x) {
    std::vector<float> p(N * E), g(N), losses(2);
    std::vector<int32_t> ex(N);
    be_->RouterSoftmaxTop1(p.data(), ex.data(), g.data(), x.data(), N, E);
    be_->RouterLosses(losses.data(), p.data(), x.data(), counts.data(), N, E, alpha, beta);
    return Dot(g, dgate) + losses[0] + losses[1];
  };
  std::vector<float> dlogits(N * E);
  be_->RouterBackward(dlogits.data(), dgate.data(), probs.data(), logits.data(), expert.data(), counts.data(), N, E,
                      alpha, beta, 1.0f);
  ExpectDirectionalGrad(f, logits, dlogits, 35, 1e-2, 1e-2, 1e-5);
}

TEST_F(BackendOpsTest, DropoutMaskStatisticsAndReplay) {
  const int64_t n = 200000;
  std::vector<float> x(n, 1.0f), y(n), dy(n);
  RngKey key{77, RngStream::kDropout, 3, 4};
  be_->DropoutForward(y.data(), x.data(), n, 0.4f, key);
  int64_t zeros = 0;
  for (float v : y) {
    if (v == 0.0f) {
      ++zeros;
    } else {
      EXPECT_FLOAT_EQ(v, 1.0f / 0.6f);
    }
  }
  EXPECT_NEAR(static_cast<double>(zeros) / n, 0.4, 0.01);  // binomial sd ~ 0.0011
  be_->DropoutBackward(dy.data(), x.data(), n, 0.4f, key);
  EXPECT_EQ(dy, y);  // the mask regenerates identically from the key
  // The mask of element i depends only on (key, offset + i), not on the call's extent.
  RngKey shifted = key;
  shifted.offset = 1000;
  std::vector<float> part(500);
  be_->DropoutForward(part.data(), x.data(), 500, 0.4f, shifted);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(part[i], y[1000 + i]);
  // The mask is exactly the spec's: kept iff CounterRng(seed, stream, a, b).Uniform(offset + i) >= rate.
  const CounterRng rng(77, RngStream::kDropout, 3, 4);
  for (int64_t i = 0; i < 5000; ++i) EXPECT_EQ(y[i] != 0.0f, rng.Uniform(i) >= 0.4f) << i;
  for (int i = 0; i < 500; ++i) EXPECT_EQ(part[i] != 0.0f, rng.Uniform(1000 + i) >= 0.4f) << i;
  std::vector<float> noise(700), jittered(700);  // unaligned offset, several chunks
  RngKey jkey{5, RngStream::kRouterJitter, 1, 2, 3};
  be_->JitterForward(jittered.data(), noise.data(), x.data(), 700, 0.1f, jkey);
  const CounterRng jrng(5, RngStream::kRouterJitter, 1, 2);
  for (int i = 0; i < 700; ++i) EXPECT_FLOAT_EQ(noise[i], 0.9f + 0.2f * jrng.Uniform(3 + i)) << i;
  // Another key gives another mask.
  std::vector<float> other(n);
  be_->DropoutForward(other.data(), x.data(), n, 0.4f, RngKey{77, RngStream::kDropout, 3, 5});
  EXPECT_NE(other, y);
}

// Products large enough to be split over threads: every transpose combination
// matches a naive product, bit-identically for 1, 2 and 3 threads.
TEST(BackendGemmTest, SplitProductsAreExactAndThreadCountFree) {
  const int m = 300, n = 200, k = 100;
  const auto a = RandomVector(m * k, 37), b = RandomVector(k * n, 38), c0 = RandomVector(m * n, 39);
  for (int variant = 0; variant < 4; ++variant) {
    const bool ta = variant & 1, tb = variant & 2;
    const int lda = ta ? m : k, ldb = tb ? k : n;
    std::vector<float> results[3];
    for (int threads = 1; threads <= 3; ++threads) {
      auto be = CreateCpuBackend(BackendOptions{threads});
      results[threads - 1] = c0;
      be->Sgemm(results[threads - 1].data(), a.data(), b.data(), m, n, k, ta, tb, 0.5f, 2.0f, lda, ldb, n);
    }
    EXPECT_EQ(results[0], results[1]) << "variant " << variant;
    EXPECT_EQ(results[0], results[2]) << "variant " << variant;
    for (int i = 0; i < m; i += 37) {
      for (int j = 0; j < n; j += 23) {
        double s = 0;
        for (int p = 0; p < k; ++p) s += static_cast<double>(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
        EXPECT_NEAR(results[0][i * n + j], 0.5 * s + 2.0 * c0[i * n + j], 1e-4);
      }
    }
  }
}

TEST_F(BackendOpsTest, SumSquaresMatchesDoubleSum) {
  auto x = RandomVector(20000, 36);
  double expect = 0;
  for (float v : x) expect += static_cast<double>(v) * v;
  EXPECT_NEAR(be_->SumSquares(x.data(), x.size()).value(), expect, 1e-9 * expect);
}

}  // namespace
}  // namespace sy::gpu
