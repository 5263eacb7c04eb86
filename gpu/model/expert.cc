// The expert unit (see expert.h): two linear layers around a GELU, with expert
// dropout keyed by (seed, step, micro-batch, layer, expert, row, unit), and the
// one place that knows where an expert's parameters sit.
#include "gpu/model/expert.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gpu/model/layers.h"
#include "gpu/model/params.h"

namespace sy::gpu {

ExpertLayout::ExpertLayout(const ModelConfig& config) {
  const int64_t C = config.d_model, F = config.d_ff;
  const int64_t numel[] = {C * F, F, F * C, C};
  const char* names[] = {"expert_w_in", "expert_b_in", "expert_w_out", "expert_b_out"};
  for (size_t i = 0; i < parts_.size(); ++i) {
    parts_[i] = ExpertPart{names[i], size_, numel[i]};
    size_ += numel[i];
  }
}

ExpertWeights ExpertLayout::Weights(const float* block) const {
  return ExpertWeights{block + parts_[0].offset, block + parts_[1].offset, block + parts_[2].offset,
                       block + parts_[3].offset};
}

ExpertGrads ExpertLayout::Grads(float* block) const {
  return ExpertGrads{block + parts_[0].offset, block + parts_[1].offset, block + parts_[2].offset,
                     block + parts_[3].offset};
}

std::array<float*, 4> ExpertLayout::ModelSlices(const ParamBlock& block, int layer, int expert) const {
  const std::string prefix = absl::StrCat("layer", layer, ".");
  std::array<float*, 4> slices{};
  for (size_t i = 0; i < parts_.size(); ++i) {
    float* whole = block.Get(prefix + parts_[i].name);
    slices[i] = whole == nullptr ? nullptr : whole + expert * parts_[i].numel;
  }
  return slices;
}

ExpertWeights ExpertLayout::ModelWeights(const ParamBlock& params, int layer, int expert) const {
  const std::array<float*, 4> s = ModelSlices(params, layer, expert);
  return ExpertWeights{s[0], s[1], s[2], s[3]};
}

ExpertGrads ExpertLayout::ModelGrads(const ParamBlock& grads, int layer, int expert) const {
  const std::array<float*, 4> s = ModelSlices(grads, layer, expert);
  return ExpertGrads{s[0], s[1], s[2], s[3]};
}

RngKey ExpertDropoutKey(const ExpertDropout& d) {
  RngKey key;
  key.seed = d.seed;
  key.stream = RngStream::kExpertDropout;
  key.a = static_cast<uint32_t>(d.step);
  key.b = static_cast<uint32_t>((static_cast<uint64_t>(d.micro_batch) << 12) | static_cast<uint32_t>(d.layer));
  key.offset = static_cast<uint64_t>(d.expert) << 40;
  return key;
}

void ExpertForward(Backend* backend, float* out, const ExpertActivations& saved, const float* in, int n, int C,
                   int F, const ExpertWeights& w, const ExpertDropout& dropout) {
  if (n <= 0) return;
  const int64_t nf = static_cast<int64_t>(n) * F;
  LinearForward(backend, saved.pre, in, w.w_in, w.b_in, n, C, F);
  backend->GeluForward(saved.act, saved.pre, nf);
  if (dropout.rate > 0.0f) backend->DropoutForward(saved.act, saved.act, nf, dropout.rate, ExpertDropoutKey(dropout));
  LinearForward(backend, out, saved.act, w.w_out, w.b_out, n, F, C);
}

void ExpertBackward(Backend* backend, float* din, const ExpertGrads& grads, float* scratch, const float* dout,
                    const float* in, const ExpertActivations& saved, int n, int C, int F, const ExpertWeights& w,
                    const ExpertDropout& dropout) {
  if (n <= 0) return;
  const int64_t nf = static_cast<int64_t>(n) * F;
  LinearBackward(backend, scratch, grads.w_out, grads.b_out, dout, saved.act, w.w_out, n, F, C);
  if (dropout.rate > 0.0f) {
    backend->DropoutBackward(scratch, scratch, nf, dropout.rate, ExpertDropoutKey(dropout));
  }
  backend->GeluBackward(scratch, saved.pre, scratch, nf);
  LinearBackward(backend, din, grads.w_in, grads.b_in, scratch, in, w.w_in, n, C, F);
}

}  // namespace sy::gpu
