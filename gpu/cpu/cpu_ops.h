// The CPU backend's loops other than the products, as free functions over its thread
// pool, so that each concern has a file of its own: cpu_elementwise.cc, cpu_rows.cc,
// cpu_router.cc. CpuBackend (cpu_backend.cc) owns the pool and forwards to them; each
// takes the arguments of the Backend method of the same name (see gpu/backend.h).
// Private to gpu/cpu/.
#pragma once

#include <cstdint>

#include "gpu/backend.h"
#include "gpu/cpu/thread_pool.h"

namespace sy::gpu::cpu {

// cpu_elementwise.cc: bias, arithmetic, GELU, Philox masks, AdamW, sum of squares.
void AddBias(ThreadPool& pool, float* out, const float* bias, int rows, int cols);
void BiasBackward(ThreadPool& pool, float* dbias, const float* dout, int rows, int cols);
void Add(ThreadPool& pool, float* out, const float* a, const float* b, int64_t n);
void Scale(ThreadPool& pool, float* x, float s, int64_t n);
void Multiply(ThreadPool& pool, float* out, const float* a, const float* b, int64_t n);
void RoundToBf16(ThreadPool& pool, float* x, int64_t n);
void GeluForward(ThreadPool& pool, float* out, const float* inp, int64_t n);
void GeluBackward(ThreadPool& pool, float* dinp, const float* inp, const float* dout, int64_t n);
// Dropout forward and backward alike: out = inp masked by the draws of key, scaled by
// 1 / (1 - rate); out may be inp.
void DropoutApply(ThreadPool& pool, float* out, const float* inp, int64_t n, float rate, const RngKey& key);
void JitterForward(ThreadPool& pool, float* out, float* noise, const float* inp, int64_t n, float eps,
                   const RngKey& key);
void AdamWUpdate(ThreadPool& pool, float* param, float* m, float* v, const float* grad, int64_t n, float lr,
                 float beta1, float beta2, float eps, float weight_decay, float grad_scale, int64_t t);
double SumSquares(ThreadPool& pool, const float* x, int64_t n);

// cpu_rows.cc: per-token rows: the token + position encoder and layer norm.
void EncoderForward(ThreadPool& pool, float* out, const int32_t* tokens, const float* wte, const float* wpe, int B,
                    int T, int C);
void EncoderBackward(ThreadPool& pool, float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B,
                     int T, int C);
void LayerNormForward(ThreadPool& pool, float* out, float* mean, float* rstd, const float* inp, const float* weight,
                      const float* bias, int N, int C);
void LayerNormBackward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, const float* mean, const float* rstd, int N, int C);

// cpu_router.cc: the softmax cross-entropy loss, the Switch router and the moves
// between tokens and expert buckets.
void SoftmaxCrossEntropyForward(ThreadPool& pool, float* losses, float* probs, const float* logits,
                                const int32_t* targets, int N, int V);
void SoftmaxCrossEntropyBackward(ThreadPool& pool, float* dlogits, const float* probs, const int32_t* targets,
                                 float dloss, int N, int V);
void RouterSoftmaxTop1(ThreadPool& pool, float* probs, int32_t* expert, float* gate, const float* logits, int N,
                       int E);
void RouterAssign(int32_t* row, int32_t* counts, int32_t* kept, const int32_t* expert, int N, int E, int capacity);
void RouterLosses(float* losses, const float* probs, const float* logits, const int32_t* counts, int N, int E,
                  float alpha, float beta);
void RouterBackward(ThreadPool& pool, float* dlogits, const float* dgate, const float* probs, const float* logits,
                    const int32_t* expert, const int32_t* counts, int N, int E, float alpha, float beta,
                    float scale);
void DispatchForward(ThreadPool& pool, float* buckets, const float* inp, const int32_t* row, int N, int C);
void DispatchBackward(ThreadPool& pool, float* dinp, const float* dbuckets, const int32_t* row, int N, int C);
void CombineForward(ThreadPool& pool, float* out, const float* buckets, const int32_t* row, const float* gate, int N,
                    int C);
void CombineBackward(ThreadPool& pool, float* dbuckets, float* dgate, const float* dout, const float* buckets,
                     const int32_t* row, const float* gate, int N, int C);

}  // namespace sy::gpu::cpu
