// AdamW, gradient clipping and the LR schedule (see optimizer.h).
#include "gpu/model/optimizer.h"

#include <cmath>


namespace sy::gpu {

float LearningRate(int64_t step, int64_t total_steps, int64_t warmup_steps, float lr) {
  const double min_lr = 0.1 * lr;
  if (warmup_steps > 0 && step <= warmup_steps) {
    return static_cast<float>(lr * static_cast<double>(std::max<int64_t>(step, 0)) / warmup_steps);
  }
  if (step >= total_steps || total_steps <= warmup_steps) return static_cast<float>(min_lr);
  const double progress = static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
  constexpr double kPi = 3.141592653589793;
  return static_cast<float>(min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(kPi * progress)));
}

bool IsExpertParam(const ParamInfo& info) {
  return info.name.find(".expert_") != std::string::npos && !info.shape.empty();
}

bool OnBf16DenseWire(const ParamInfo& info) {
  return !IsExpertParam(info) && info.name.find(".router_") == std::string::npos;
}

std::vector<std::pair<int64_t, int64_t>> Bf16DenseWireRanges(const std::vector<ParamInfo>& infos) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (const ParamInfo& info : infos) {
    if (OnBf16DenseWire(info)) ranges.emplace_back(info.offset, info.offset + info.numel);
  }
  return ranges;
}

void RoundBf16DenseWire(ParamBlock* params) {
  for (const auto& [first, end] : Bf16DenseWireRanges(params->infos())) {
    params->backend()->RoundToBf16(params->data() + first, end - first);
  }
}

std::vector<GradSegment> GradSegments(const std::vector<ParamInfo>& infos) {
  std::vector<GradSegment> segments;
  for (size_t i = 0; i < infos.size(); ++i) {
    const ParamInfo& info = infos[i];
    if (!IsExpertParam(info) || info.shape[0] <= 0) {
      segments.push_back({static_cast<uint32_t>(i), -1, info.offset, info.numel});
      continue;
    }
    const int64_t experts = info.shape[0];
    const int64_t per_expert = info.numel / experts;
    for (int64_t e = 0; e < experts; ++e) {
      segments.push_back({static_cast<uint32_t>(i), static_cast<int>(e), info.offset + e * per_expert, per_expert});
    }
  }
  return segments;
}

float GradNormFromSquares(double squared_norm) { return static_cast<float>(std::sqrt(squared_norm)); }

float ClipScale(float norm, float max_norm) {
  if (max_norm <= 0.0f) return 1.0f;
  const float scale = max_norm / (norm + 1e-6f);
  return scale < 1.0f ? scale : 1.0f;
}

absl::StatusOr<float> GradNorm(const ParamBlock& grads) {
  double squared = 0;
  for (const GradSegment& seg : GradSegments(grads.infos())) {
    auto sq = grads.backend()->SumSquares(grads.data() + seg.offset, seg.numel);
    if (!sq.ok()) return sq.status();
    squared += *sq;
  }
  return GradNormFromSquares(squared);
}

absl::StatusOr<std::unique_ptr<AdamW>> AdamW::Create(const ParamBlock& params, const AdamWConfig& config) {
  if (!(config.beta1 >= 0.0f && config.beta1 < 1.0f && config.beta2 >= 0.0f && config.beta2 < 1.0f &&
        config.eps > 0.0f && config.weight_decay >= 0.0f)) {
    return absl::InvalidArgumentError("AdamW: need 0 <= beta1, beta2 < 1, eps > 0, weight_decay >= 0");
  }
  auto m = ParamBlock::Create(params.backend(), params.infos());
  if (!m.ok()) return m.status();
  auto v = ParamBlock::Create(params.backend(), params.infos());
  if (!v.ok()) return v.status();
  if (absl::Status s = (*m)->SetZero(); !s.ok()) return s;
  if (absl::Status s = (*v)->SetZero(); !s.ok()) return s;
  return std::unique_ptr<AdamW>(new AdamW(config, std::move(*m), std::move(*v)));
}

AdamW::AdamW(const AdamWConfig& config, std::unique_ptr<ParamBlock> m, std::unique_ptr<ParamBlock> v)
    : config_(config), m_(std::move(m)), v_(std::move(v)) {}

absl::StatusOr<float> AdamW::Step(ParamBlock* params, ParamBlock* grads, float lr) {
  if (params->size() != m_->size() || grads->size() != m_->size() || params->backend() != m_->backend() ||
      grads->backend() != m_->backend()) {
    return absl::InvalidArgumentError("AdamW::Step: parameter, gradient and moment layouts differ");
  }
  if (!std::isfinite(lr) || lr < 0.0f) return absl::InvalidArgumentError("AdamW::Step: bad learning rate");
  auto norm = GradNorm(*grads);
  if (!norm.ok()) return norm.status();
  const float clip = ClipScale(*norm, config_.max_grad_norm);
  const int64_t t = step_ + 1;
  Backend* backend = params->backend();
  for (const ParamInfo& info : params->infos()) {
    backend->AdamWUpdate(params->data() + info.offset, m_->data() + info.offset, v_->data() + info.offset,
                         grads->data() + info.offset, info.numel, lr, config_.beta1, config_.beta2, config_.eps,
                         info.decays ? config_.weight_decay : 0.0f, clip, t);
  }
  step_ = t;
  return norm;
}

}  // namespace sy::gpu
