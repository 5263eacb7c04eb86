// Expert FFN throughput: forward + backward of 8 experts (d_model 512, d_ff 2048)
// through the in-process ExpertExecutor (the expert unit on the CPU backend), against a
// bare cblas_sgemm loop of the same total FLOPs over all the tokens, measured in the
// same run. Two cases, each ending in a `ratio NAME VALUE` line (bare sgemm time over
// expert time):
//   expert_4096: 4096 tokens, 512 per expert, against six 4096 x 512 x 2048 sgemms.
//   expert_512:  512 tokens (a 512-token micro-batch routed over 8 experts: buckets of
//                64 tokens each), against six 512 x 512 x 2048 sgemms. The executor gets
//                a layer's 8 small buckets in one grouped call; the ratio shows whether
//                grouping keeps its GEMMs as efficient as one GEMM over all 512 tokens.
// Usage: expert_bench [threads=2] [iterations=5]
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/model/inprocess_executor.h"
#include "gpu/model/model.h"

namespace sy::gpu {
namespace {

double Seconds(const std::function<void()>& body) {
  const auto t0 = std::chrono::steady_clock::now();
  body();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One case of `tokens` tokens split evenly over the experts; prints its figures and
// returns the ratio (0 when the executor failed).
double RunCase(int threads, int iterations, int tokens) {
  ModelConfig cfg;
  cfg.layers = 1;
  cfg.moe_every = 1;
  cfg.d_model = 512;
  cfg.d_ff = 2048;
  cfg.heads = 8;
  cfg.experts = 8;
  const int C = cfg.d_model, F = cfg.d_ff, E = cfg.experts, N = tokens, rows = N / E;
  auto backend = CreateCpuBackend(BackendOptions{threads});
  auto params = ParamBlock::Create(backend.get(), ParamInfos(cfg)).value();
  auto grads = ParamBlock::Create(backend.get(), ParamInfos(cfg)).value();
  if (!InitParams(cfg, 1, params.get()).ok() || !grads->SetZero().ok()) return 0;
  InProcessExpertExecutor executor(cfg, params.get());
  std::vector<float> in(static_cast<size_t>(N) * C), out(in.size()), dout(in.size()), din(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    in[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f - 0.5f;
    dout[i] = static_cast<float>((i * 104729) % 1000) / 1000.0f - 0.5f;
  }
  std::vector<ExpertBucket> fwd;
  std::vector<ExpertBucketGrad> bwd;
  for (int e = 0; e < E; ++e) {
    const size_t off = static_cast<size_t>(e) * rows * C;
    fwd.push_back({e, rows, in.data() + off, out.data() + off});
    bwd.push_back({e, rows, dout.data() + off, din.data() + off});
  }
  ExpertCall call;
  call.layer = 0;
  call.grads = grads.get();
  // Baseline: six N x 512 x 2048 products (the same FLOPs as 2 forward + 4 backward
  // GEMMs) on OpenBLAS's own threads.
  std::vector<float> a(static_cast<size_t>(N) * C, 0.5f), b(static_cast<size_t>(C) * F, 0.25f),
      c(static_cast<size_t>(N) * F);
  bool ok = true;
  auto expert_pass = [&] {
    ok &= executor.Forward(call, fwd).ok();
    ok &= executor.Backward(call, bwd).ok();
  };
  auto sgemm_pass = [&] {
    for (int k = 0; k < 6; ++k) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, F, C, 1.0f, a.data(), C, b.data(), F, 0.0f,
                  c.data(), F);
    }
  };
  // Interleaved, best of `iterations` each after a warm-up, so both see the same machine
  // load. The CPU backend runs OpenBLAS single-threaded inside its own pool.
  double expert_s = 1e30, sgemm_s = 1e30;
  for (int i = 0; i <= iterations; ++i) {
    openblas_set_num_threads(1);
    const double e = Seconds(expert_pass);
    openblas_set_num_threads(threads);
    const double g = Seconds(sgemm_pass);
    if (i > 0) {
      expert_s = std::min(expert_s, e);
      sgemm_s = std::min(sgemm_s, g);
    }
  }
  openblas_set_num_threads(1);
  if (!ok) {
    std::fprintf(stderr, "expert executor failed\n");
    return 0;
  }
  const double flops = 12.0 * N * C * F;
  std::printf("expert_bench: d_model %d, d_ff %d, %d experts, %d tokens (%d per expert), %d threads\n", C, F, E, N,
              rows, threads);
  std::printf("  expert FFN fwd+bwd (executor): %.3f s  %.1f GFLOP/s\n", expert_s, flops / expert_s / 1e9);
  std::printf("  bare cblas_sgemm, same FLOPs : %.3f s  %.1f GFLOP/s\n", sgemm_s, flops / sgemm_s / 1e9);
  std::printf("  ratio expert / bare sgemm    : %.3f\n", sgemm_s / expert_s);
  return sgemm_s / expert_s;
}

int Run(int threads, int iterations) {
  const double large = RunCase(threads, iterations, 4096);
  const double small = RunCase(threads, iterations, 512);
  if (large == 0 || small == 0) return 1;
  std::printf("\nratio expert_4096 %.3f\nratio expert_512 %.3f\n", large, small);
  return 0;
}

}  // namespace
}  // namespace sy::gpu

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 5;
  if (threads < 1 || iterations < 1) {
    std::fprintf(stderr, "usage: expert_bench [threads>=1] [iterations>=1]\n");
    return 2;
  }
  return sy::gpu::Run(threads, iterations);
}
