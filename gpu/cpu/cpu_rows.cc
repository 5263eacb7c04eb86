// The CPU backend's per-token row ops (see cpu_ops.h): the token + position encoder
// and layer norm. Each row is owned by one thread; the weight gradients are summed
// per column over the rows in order (layer norm's in double).
#include <cmath>
#include <vector>

#include "gpu/cpu/cpu_ops.h"

namespace sy::gpu::cpu {
namespace {

constexpr float kLayerNormEps = 1e-5f;

}  // namespace

void EncoderForward(ThreadPool& pool, float* out, const int32_t* tokens, const float* wte, const float* wpe, int B,
                    int T, int C) {
  pool.ParallelFor(static_cast<int64_t>(B) * T, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* e = wte + static_cast<int64_t>(tokens[n]) * C;
      const float* p = wpe + (n % T) * C;
      float* o = out + n * C;
      for (int c = 0; c < C; ++c) o[c] = e[c] + p[c];
    }
  });
}

void EncoderBackward(ThreadPool& pool, float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B,
                     int T, int C) {
  const int64_t N = static_cast<int64_t>(B) * T;
  pool.ParallelFor(C, 8, [&](int64_t c0, int64_t c1) {
    for (int64_t n = 0; n < N; ++n) {
      const float* d = dout + n * C;
      float* e = dwte + static_cast<int64_t>(tokens[n]) * C;
      float* p = dwpe + (n % T) * C;
      for (int64_t c = c0; c < c1; ++c) {
        e[c] += d[c];
        p[c] += d[c];
      }
    }
  });
}

void LayerNormForward(ThreadPool& pool, float* out, float* mean, float* rstd, const float* inp, const float* weight,
                      const float* bias, int N, int C) {
  pool.ParallelFor(N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* x = inp + n * C;
      double s = 0;
      for (int c = 0; c < C; ++c) s += x[c];
      const double m = s / C;
      double v = 0;
      for (int c = 0; c < C; ++c) v += (x[c] - m) * (x[c] - m);
      const float r = static_cast<float>(1.0 / std::sqrt(v / C + kLayerNormEps));
      const float mf = static_cast<float>(m);
      float* o = out + n * C;
      for (int c = 0; c < C; ++c) o[c] = (x[c] - mf) * r * weight[c] + bias[c];
      mean[n] = mf;
      rstd[n] = r;
    }
  });
}

void LayerNormBackward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, const float* mean, const float* rstd, int N, int C) {
  pool.ParallelFor(N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* x = inp + n * C;
      const float* d = dout + n * C;
      const float m = mean[n], r = rstd[n];
      double dnorm_mean = 0, dnorm_norm_mean = 0;
      for (int c = 0; c < C; ++c) {
        const float dn = d[c] * weight[c];
        dnorm_mean += dn;
        dnorm_norm_mean += static_cast<double>(dn) * ((x[c] - m) * r);
      }
      const float a = static_cast<float>(dnorm_mean / C);
      const float b = static_cast<float>(dnorm_norm_mean / C);
      float* di = dinp + n * C;
      for (int c = 0; c < C; ++c) {
        const float norm = (x[c] - m) * r;
        di[c] += (d[c] * weight[c] - a - norm * b) * r;
      }
    }
  });
  pool.ParallelFor(C, 8, [&](int64_t c0, int64_t c1) {
    std::vector<double> dw(c1 - c0, 0.0), db(c1 - c0, 0.0);
    for (int64_t n = 0; n < N; ++n) {
      const float* x = inp + n * C;
      const float* d = dout + n * C;
      for (int64_t c = c0; c < c1; ++c) {
        dw[c - c0] += static_cast<double>((x[c] - mean[n]) * rstd[n]) * d[c];
        db[c - c0] += d[c];
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      dweight[c] += static_cast<float>(dw[c - c0]);
      dbias[c] += static_cast<float>(db[c - c0]);
    }
  });
}

}  // namespace sy::gpu::cpu
