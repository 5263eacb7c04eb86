// AdamW exactly as torch.optim.AdamW (decoupled weight decay on the matrices only),
// global gradient-norm clipping as torch.nn.utils.clip_grad_norm_, and the
// learning-rate schedule (linear warmup, cosine decay to 0.1*lr). The moments live
// in two parameter-layout blocks on the backend. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

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

// One segment of the global gradient norm: a dense parameter tensor, or one
// expert's slice of an expert tensor (layer{l}.expert_*[e]). Segments in
// canonical order: parameters in order, an expert tensor's experts 0..E-1.
struct GradSegment {
  uint32_t param_index = 0;  // index in ParamInfos
  int expert = -1;           // expert slice, or -1 for a whole (dense) tensor
  int64_t offset = 0;        // elements from the start of the block
  int64_t numel = 0;
};
// True for the expert tensors (their dim 0 is the expert index).
bool IsExpertParam(const ParamInfo& info);
// Whether a parameter travels in bf16 under --dense_wire_dtype=bf16: every dense one but
// the router's (the Switch paper's selective precision keeps the router in f32).
bool OnBf16DenseWire(const ParamInfo& info);
// Their elements [offset, offset + numel), ascending (for GradTree::set_bf16_ranges).
std::vector<std::pair<int64_t, int64_t>> Bf16DenseWireRanges(const std::vector<ParamInfo>& infos);
// Rounds those parameters of `params` to the nearest bf16: a trainer's working copy
// under --dense_wire_dtype=bf16 (what it pulls; the f32 master stays on the hosts).
void RoundBf16DenseWire(ParamBlock* params);
std::vector<GradSegment> GradSegments(const std::vector<ParamInfo>& infos);

// The global squared norm is the sum, in canonical segment order (in double), of
// per-segment Backend::SumSquares, so hosts holding single segments can compute
// their parts and a leader can add them up with the same bits.
// GradNormFromSquares: the float norm; ClipScale: max_norm / (norm + 1e-6) when
// that is < 1 and max_norm > 0, else 1 (no clipping).
float GradNormFromSquares(double squared_norm);
float ClipScale(float norm, float max_norm);

// Global L2 norm of grads (per-segment sums, see above).
absl::StatusOr<float> GradNorm(const ParamBlock& grads);

class AdamW {
 public:
  // Zeroed moments with the layout of `params`; backend from params.
  static absl::StatusOr<std::unique_ptr<AdamW>> Create(const ParamBlock& params,
                                                       const AdamWConfig& config);
  // Applies one update with learning rate lr to grads clipped per
  // config.max_grad_norm (the clip scale multiplies each gradient inside the update,
  // with the bits of scaling grads first; grads are left as they are); increments
  // step(). Returns the pre-clip grad norm.
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
