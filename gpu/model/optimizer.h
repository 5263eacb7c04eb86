// AdamW exactly as torch.optim.AdamW (decoupled weight decay on the matrices only),
// global gradient-norm clipping as torch.nn.utils.clip_grad_norm_, and the
// learning-rate schedule (linear warmup, cosine decay to 0.1*lr). The moments live
// in two parameter-layout blocks on the backend. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gpu/backend.h"
#include "gpu/model/params.h"

namespace sy::gpu {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;  // applied where ParamInfo::decays
  float max_grad_norm = 1.0f; // <= 0 disables clipping
};

// LR for step s (1-based, s = 1..total): s <= warmup: lr * s / warmup; then cosine
// from lr down to 0.1*lr reached at s = total. Steps past total stay at 0.1*lr.
float LearningRate(int64_t step, int64_t total_steps, int64_t warmup_steps, float lr);

// Global L2 norm of grads (fixed summation order). If max_norm > 0 and
// max_norm / (norm + 1e-6) < 1, scales grads in place by that factor.
// Returns the norm before clipping.
absl::StatusOr<float> ClipGradNorm(ParamBlock* grads, float max_norm);

class AdamW {
 public:
  // Zeroed moments with the layout of `params`; backend from params.
  static absl::StatusOr<std::unique_ptr<AdamW>> Create(const ParamBlock& params,
                                                       const AdamWConfig& config);
  // Clips grads (in place, per config.max_grad_norm) and applies one update with
  // learning rate lr; increments step(). Returns the pre-clip grad norm.
  // kInvalidArgument (nothing changed) when layouts differ.
  absl::StatusOr<float> Step(ParamBlock* params, ParamBlock* grads, float lr);

  int64_t step() const { return step_; }  // updates applied so far
  void set_step(int64_t step) { step_ = step; }  // when restoring a checkpoint
  ParamBlock& m() { return *m_; }
  ParamBlock& v() { return *v_; }
  const AdamWConfig& config() const { return config_; }

 private:
  AdamW(const AdamWConfig& config, std::unique_ptr<ParamBlock> m, std::unique_ptr<ParamBlock> v);
  AdamWConfig config_;
  std::unique_ptr<ParamBlock> m_, v_;
  int64_t step_ = 0;
};

}  // namespace sy::gpu
