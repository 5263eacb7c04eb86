// The matrix products of one training micro-batch of the Switchyard model, read off its
// ModelConfig, so that model_bench counts the model's FLOPs and times a bare
// cblas_sgemm baseline from the same list of shapes.
#pragma once

#include <vector>

#include "gpu/model/config.h"

namespace sy::bench {

// `count` products (m x k) . (k x n) in the forward pass; backward runs two products of
// the same FLOPs per forward one (input gradient and weight gradient).
struct Gemm {
  int m = 0, n = 0, k = 0;
  int count = 1;
};

// Forward GEMMs of one micro-batch of `batch` sequences of config.context tokens:
// per layer the QKV and output projections, attention scores and values per
// (sequence, head) over the full T x T square, the dense FFN or, in a Switch layer,
// the router and each expert's two products over its share of the kept tokens
// (`kept_fraction` of the micro-batch, spread evenly over the experts); then the
// logits against the tied embedding.
std::vector<Gemm> ForwardGemms(const gpu::ModelConfig& config, int batch, double kept_fraction);

// Forward plus backward FLOPs of `gemms` (3 x 2mnk each).
double TrainingFlops(const std::vector<Gemm>& gemms);

// Runs every GEMM of `gemms` forward and both backward products through cblas_sgemm
// on OpenBLAS's own `threads` threads (set back to 1 after, as the CPU backend wants);
// returns the seconds taken.
double TimeSgemmPass(const std::vector<Gemm>& gemms, int threads);

}  // namespace sy::bench
