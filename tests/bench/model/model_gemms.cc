// The model's GEMM shapes and their bare-sgemm timing (see model_gemms.h).
#include "tests/bench/model/model_gemms.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace sy::bench {

std::vector<Gemm> ForwardGemms(const gpu::ModelConfig& config, int batch, double kept_fraction) {
  const int T = config.context, C = config.d_model, F = config.d_ff, D = config.head_size();
  const int N = batch * T, sequence_heads = batch * config.heads;
  std::vector<Gemm> gemms;
  for (int l = 0; l < config.layers; ++l) {
    gemms.push_back({N, 3 * C, C});                   // QKV projection
    gemms.push_back({T, T, D, sequence_heads});       // attention scores
    gemms.push_back({T, D, T, sequence_heads});       // attention-weighted values
    gemms.push_back({N, C, C});                       // output projection
    if (config.IsSwitchLayer(l)) {
      const int E = config.experts;
      const int rows = static_cast<int>(std::lround(N * kept_fraction / E));
      gemms.push_back({N, E, C});                     // router
      if (rows > 0) {
        gemms.push_back({rows, F, C, E});             // expert W_in
        gemms.push_back({rows, C, F, E});             // expert W_out
      }
    } else {
      gemms.push_back({N, F, C});                     // FFN in
      gemms.push_back({N, C, F});                     // FFN out
    }
  }
  gemms.push_back({N, config.vocab, C});              // logits
  return gemms;
}

double TrainingFlops(const std::vector<Gemm>& gemms) {
  double flops = 0;
  for (const Gemm& g : gemms) flops += 3.0 * 2.0 * g.m * g.n * g.k * g.count;
  return flops;
}

double TimeSgemmPass(const std::vector<Gemm>& gemms, int threads) {
  size_t a_size = 0, b_size = 0, c_size = 0;
  for (const Gemm& g : gemms) {
    a_size = std::max(a_size, static_cast<size_t>(g.m) * g.k);
    b_size = std::max(b_size, static_cast<size_t>(g.k) * g.n);
    c_size = std::max(c_size, static_cast<size_t>(g.m) * g.n);
  }
  // Inputs stay constant; outputs and gradients go to their own buffers.
  const std::vector<float> a(a_size, 0.01f), b(b_size, 0.02f), dc(c_size, 0.03f);
  std::vector<float> c(c_size), da(a_size), db(b_size);
  openblas_set_num_threads(threads);
  const auto start = std::chrono::steady_clock::now();
  for (const Gemm& g : gemms) {
    for (int i = 0; i < g.count; ++i) {
      // C = A . B; dA = dC . B^T; dB = A^T . dC
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.m, g.n, g.k, 1.0f, a.data(), g.k, b.data(), g.n, 0.0f,
                  c.data(), g.n);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.m, g.k, g.n, 1.0f, dc.data(), g.n, b.data(), g.n, 0.0f,
                  da.data(), g.k);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g.k, g.n, g.m, 1.0f, a.data(), g.k, dc.data(), g.n, 0.0f,
                  db.data(), g.n);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  openblas_set_num_threads(1);
  return seconds;
}

}  // namespace sy::bench
