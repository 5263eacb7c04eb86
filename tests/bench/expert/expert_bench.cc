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
// Each case also times bare sgemms at the buckets' own shapes (per expert, with its own
// weights and gradients, the six products of forward and backward, transposes included, the experts
// side by side on `threads` threads as the executor runs them): one single-threaded call
// per product gives `ratio expert_N_bucket_bound`, the most an executor whose products
// have the buckets' shapes can reach with this BLAS; the backend's Sgemm, which cuts each
// product into fixed blocks so that its bits do not depend on the thread count, gives
// `ratio expert_N_cut_bound`, the most this deterministic executor can reach; adding the
// time of the expert's other work alone (both biases, GELU forward and backward) gives
// `ratio expert_N_work_bound`, what the executor reaches if nothing else costs anything.
// Usage: expert_bench [threads=2] [iterations=5]
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "common/base/process_setup.h"
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

struct Ratios {
  double expert;        // bare sgemm over all tokens / the executor
  double bucket_bound;  // bare sgemm over all tokens / bare sgemms at the bucket shapes
  double cut_bound;     // bare sgemm over all tokens / the bucket shapes in the backend's fixed cut
  double work_bound;    // the same, with the biases' and GELU's time added
};

// One case of `tokens` tokens split evenly over the experts; prints its figures and
// returns its ratios (expert 0 when the executor failed).
Ratios RunCase(int threads, int iterations, int tokens) {
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
  if (!InitParams(cfg, 1, params.get()).ok() || !grads->SetZero().ok()) return {0, 0, 0, 0};
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
  // The six products of each expert at its bucket's shapes: X W1, H W2 forward; dY W2^T,
  // H^T dY, dH W1^T, X^T dH backward (weights C x F and F x C, activations rows x C/F),
  // each expert with its own weights and gradients as in the executor. `gemm` is either a
  // bare single-threaded cblas_sgemm of the whole product, or the backend's Sgemm, which
  // cuts it into the fixed blocks that keep its bits independent of the thread count.
  using Gemm = std::function<void(float*, const float*, const float*, int, int, int, bool, bool, float, int, int,
                                  int)>;
  const std::vector<float> weights(static_cast<size_t>(C) * F, 0.25f);
  std::vector<std::vector<float>> w_in(E, weights), w_out(E, weights), dw_in(E, weights), dw_out(E, weights);
  std::vector<std::vector<float>> act(E, std::vector<float>(static_cast<size_t>(rows) * F, 0.5f)),
      act2(E, std::vector<float>(static_cast<size_t>(rows) * F));
  auto bucket_products = [&](const Gemm& gemm, int e) {
    const float* x = act[e].data();
    float* y = act2[e].data();
    gemm(y, x, w_in[e].data(), rows, F, C, false, false, 0.0f, C, F, F);
    gemm(y, x, w_out[e].data(), rows, C, F, false, false, 0.0f, F, C, C);
    gemm(y, x, w_out[e].data(), rows, F, C, false, true, 0.0f, C, C, F);
    gemm(dw_out[e].data(), x, y, F, C, rows, true, false, 1.0f, F, C, C);
    gemm(y, x, w_in[e].data(), rows, C, F, false, true, 0.0f, F, F, C);
    gemm(dw_in[e].data(), x, y, C, F, rows, true, false, 1.0f, C, F, F);
  };
  const Gemm whole = [](float* c, const float* a, const float* b, int m, int n, int k, bool ta, bool tb, float beta,
                        int lda, int ldb, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda,
                b, ldb, beta, c, ldc);
  };
  const Gemm cut = [&backend](float* c, const float* a, const float* b, int m, int n, int k, bool ta, bool tb,
                              float beta, int lda, int ldb, int ldc) {
    backend->Sgemm(c, a, b, m, n, k, ta, tb, 1.0f, beta, lda, ldb, ldc);
  };
  auto bucket_pass = [&](const Gemm& gemm) {
    backend->RunIndependent(E, [&](int64_t e) { bucket_products(gemm, static_cast<int>(e)); });
  };
  // The expert's work besides its products, on buffers of the same sizes: both biases
  // added and reduced, GELU forward and backward (one expf per element each way). The
  // bias piles up in `pre` pass after pass; the time does not depend on the values.
  const std::vector<float> bias(F, 0.01f);
  std::vector<std::vector<float>> pre(E, std::vector<float>(static_cast<size_t>(rows) * F, 0.5f)),
      gelu(E, std::vector<float>(static_cast<size_t>(rows) * F)), dbias(E, std::vector<float>(F));
  auto elementwise_pass = [&] {
    backend->RunIndependent(E, [&](int64_t e) {
      const int64_t n = static_cast<int64_t>(rows) * F;
      backend->AddBias(pre[e].data(), bias.data(), rows, F);
      backend->GeluForward(gelu[e].data(), pre[e].data(), n);
      backend->AddBias(gelu[e].data(), bias.data(), rows, C);
      backend->BiasBackward(dbias[e].data(), gelu[e].data(), rows, C);
      backend->GeluBackward(gelu[e].data(), pre[e].data(), gelu[e].data(), n);
      backend->BiasBackward(dbias[e].data(), gelu[e].data(), rows, F);
    });
  };
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
  double expert_s = 1e30, sgemm_s = 1e30, bucket_s = 1e30, cut_s = 1e30, elementwise_s = 1e30;
  for (int i = 0; i <= iterations; ++i) {
    openblas_set_num_threads(1);
    const double e = Seconds(expert_pass);
    const double b = Seconds([&] { bucket_pass(whole); });
    const double c = Seconds([&] { bucket_pass(cut); });
    const double w = Seconds(elementwise_pass);
    openblas_set_num_threads(threads);
    const double g = Seconds(sgemm_pass);
    if (i > 0) {
      expert_s = std::min(expert_s, e);
      sgemm_s = std::min(sgemm_s, g);
      bucket_s = std::min(bucket_s, b);
      cut_s = std::min(cut_s, c);
      elementwise_s = std::min(elementwise_s, w);
    }
  }
  openblas_set_num_threads(1);
  if (!ok) {
    std::fprintf(stderr, "expert executor failed\n");
    return {0, 0, 0, 0};
  }
  const double flops = 12.0 * N * C * F;
  std::printf("expert_bench: d_model %d, d_ff %d, %d experts, %d tokens (%d per expert), %d threads\n", C, F, E, N,
              rows, threads);
  std::printf("  expert FFN fwd+bwd (executor): %.3f s  %.1f GFLOP/s\n", expert_s, flops / expert_s / 1e9);
  std::printf("  bare cblas_sgemm, same FLOPs : %.3f s  %.1f GFLOP/s\n", sgemm_s, flops / sgemm_s / 1e9);
  std::printf("  bare sgemm, bucket shapes    : %.3f s  %.1f GFLOP/s\n", bucket_s, flops / bucket_s / 1e9);
  std::printf("  the same, in the fixed cut   : %.3f s  %.1f GFLOP/s\n", cut_s, flops / cut_s / 1e9);
  std::printf("  biases and GELU alone        : %.3f s\n", elementwise_s);
  std::printf("  fixed cut + biases and GELU  : %.3f s  %.1f GFLOP/s\n", cut_s + elementwise_s,
              flops / (cut_s + elementwise_s) / 1e9);
  std::printf("  ratio expert / bare sgemm    : %.3f\n", sgemm_s / expert_s);
  return {sgemm_s / expert_s, sgemm_s / bucket_s, sgemm_s / cut_s, sgemm_s / (cut_s + elementwise_s)};
}

int Run(int threads, int iterations) {
  const Ratios large = RunCase(threads, iterations, 4096);
  const Ratios small = RunCase(threads, iterations, 512);
  if (large.expert == 0 || small.expert == 0) return 1;
  std::printf("\nratio expert_4096 %.3f\nratio expert_512 %.3f\n", large.expert, small.expert);
  std::printf("ratio expert_4096_bucket_bound %.3f\nratio expert_512_bucket_bound %.3f\n", large.bucket_bound,
              small.bucket_bound);
  std::printf("ratio expert_4096_cut_bound %.3f\nratio expert_512_cut_bound %.3f\n", large.cut_bound,
              small.cut_bound);
  std::printf("ratio expert_4096_work_bound %.3f\nratio expert_512_work_bound %.3f\n", large.work_bound,
              small.work_bound);
  return 0;
}

}  // namespace
}  // namespace sy::gpu

int main(int argc, char** argv) {
  sy::base::SetUpProcess();
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 5;
  if (threads < 1 || iterations < 1) {
    std::fprintf(stderr, "usage: expert_bench [threads>=1] [iterations>=1]\n");
    return 2;
  }
  return sy::gpu::Run(threads, iterations);
}
