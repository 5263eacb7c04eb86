// The expert unit: one expert FFN, Expert(u) = GELU(u·W_in + b_in)·W_out + b_out,
// run on a bucket of tokens (forward) and differentiated (backward); where an
// expert's parameters sit (ExpertLayout: its own block, and its slices of the model's
// stacked expert parameters); and the ExpertExecutor interface through which a
// Switch layer sends each expert's bucket.
// The in-process executor (gpu/model/inprocess_executor.h) runs the unit locally;
// a remote executor (expert hosts) replaces it without touching the model code.
// Thread-safety: functions are as thread-safe as the backend they run on;
// executors are used by one model (one thread) at a time.
#pragma once

#include <array>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "gpu/backend.h"
#include "gpu/model/config.h"

namespace sy::gpu {

class ParamBlock;

// One expert's weights (device pointers).
struct ExpertWeights {
  const float* w_in = nullptr;   // (C, F)
  const float* b_in = nullptr;   // (F)
  const float* w_out = nullptr;  // (F, C)
  const float* b_out = nullptr;  // (C)
};

// One expert's weight gradients (device pointers), accumulated (+=).
struct ExpertGrads {
  float* w_in = nullptr;   // (C, F)
  float* b_in = nullptr;   // (F)
  float* w_out = nullptr;  // (F, C)
  float* b_out = nullptr;  // (C)
};

// ---- parameter layout ----

// One of an expert's four parameters: the model parameter it is a slice of (`name`
// after "layer<l>.", stacked over the layer's experts, so expert e's slice starts at
// e * numel), and where it sits in the expert's own block.
struct ExpertPart {
  const char* name = nullptr;  // "expert_w_in", "expert_b_in", "expert_w_out", "expert_b_out"
  int64_t offset = 0;          // in the expert's block, in elements
  int64_t numel = 0;
};

// An expert's parameters as ONE block [w_in (C,F) | b_in (F) | w_out (F,C) | b_out (C)]:
// how an expert host keeps an expert's weights, its gradients and both AdamW moments
// (each a block of this layout), and how an expert's weights travel when pulled.
class ExpertLayout {
 public:
  explicit ExpertLayout(const ModelConfig& config);
  // The four parts in block order.
  const std::array<ExpertPart, 4>& parts() const { return parts_; }
  // Elements of the whole block.
  int64_t size() const { return size_; }
  // The parts of a block of this layout (device pointers).
  ExpertWeights Weights(const float* block) const;
  ExpertGrads Grads(float* block) const;
  // Expert `expert`'s slices of layer `layer`'s stacked expert parameters in a block of
  // the model's layout (gpu/model/params.h), one per part in block order; null where
  // the block has no such parameter. ModelWeights / ModelGrads: the same as weights or
  // gradients.
  std::array<float*, 4> ModelSlices(const ParamBlock& block, int layer, int expert) const;
  ExpertWeights ModelWeights(const ParamBlock& params, int layer, int expert) const;
  ExpertGrads ModelGrads(const ParamBlock& grads, int layer, int expert) const;

 private:
  std::array<ExpertPart, 4> parts_;
  int64_t size_ = 0;
};

// What forward saves for backward (device pointers, n rows each).
struct ExpertActivations {
  float* pre = nullptr;  // (n, F) u·W_in + b_in
  float* act = nullptr;  // (n, F) GELU(pre) after expert dropout
};

// Expert dropout of a bucket: the mask of element (row r, unit f) is
// CounterRng(seed, kExpertDropout, step, micro_batch << 12 | layer) at index
// (expert << 40) | (r * F + f). rate 0 disables it.
struct ExpertDropout {
  float rate = 0.0f;
  uint64_t seed = 0;
  int64_t step = 0;
  int64_t micro_batch = 0;
  int layer = 0;
  int expert = 0;
};
RngKey ExpertDropoutKey(const ExpertDropout& d);

// out (n, C) = Expert(in (n, C)); saves activations for backward. n may be 0.
void ExpertForward(Backend* backend, float* out, const ExpertActivations& saved,
                   const float* in, int n, int C, int F, const ExpertWeights& w,
                   const ExpertDropout& dropout);
// din (n, C) (overwrite) and grads (+=) from dout (n, C), the forward's input
// in (n, C) and saved activations. scratch (n, F) is clobbered.
void ExpertBackward(Backend* backend, float* din, const ExpertGrads& grads, float* scratch,
                    const float* dout, const float* in, const ExpertActivations& saved, int n,
                    int C, int F, const ExpertWeights& w, const ExpertDropout& dropout);

// ---- executor interface ----

// Identifies one Switch layer's expert calls within a step.
struct ExpertCall {
  uint64_t seed = 0;
  int64_t step = 0;
  int64_t micro_batch = 0;
  int layer = 0;
  bool training = false;      // expert dropout only when training
  float expert_dropout = 0;   // rate
  ParamBlock* grads = nullptr;  // the micro-batch's gradient block (in-process executors
                                // write expert gradients here; remote ones keep them)
};

// One expert's bucket for forward: rows tokens (device pointers of the model's backend).
struct ExpertBucket {
  int expert = 0;
  int rows = 0;
  const float* in = nullptr;  // (rows, C)
  float* out = nullptr;       // (rows, C)
};

// One expert's bucket for backward.
struct ExpertBucketGrad {
  int expert = 0;
  int rows = 0;
  const float* dout = nullptr;  // (rows, C)
  float* din = nullptr;         // (rows, C)
};

class ExpertExecutor {
 public:
  virtual ~ExpertExecutor() = default;
  // Runs every bucket of one layer (buckets with rows == 0 may be present).
  // Keeps what Backward needs for (call.micro_batch, call.layer); the caller keeps
  // each bucket's `in` memory unchanged until that Backward.
  virtual absl::Status Forward(const ExpertCall& call, absl::Span<const ExpertBucket> buckets) = 0;
  // Backward of the buckets of the last Forward of (call.micro_batch, call.layer)
  // (same experts and rows); writes din and the weight gradients.
  virtual absl::Status Backward(const ExpertCall& call,
                                absl::Span<const ExpertBucketGrad> buckets) = 0;
};

}  // namespace sy::gpu
