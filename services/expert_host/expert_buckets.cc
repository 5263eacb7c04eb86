// Forward and backward of an expert actor's buckets (see expert_buckets.h).
#include "services/expert_host/expert_buckets.h"

#include <utility>

namespace sy::expert_host {

ExpertBuckets::ExpertBuckets(const gpu::ModelConfig& config, int layer, int expert)
    : config_(config), layout_(config), layer_(layer), expert_(expert) {}

std::optional<int> ExpertBuckets::KeptRows(uint32_t micro_batch) const {
  auto it = kept_.find(micro_batch);
  if (it == kept_.end()) return std::nullopt;
  return it->second.rows;
}

absl::StatusOr<transport::Frame> ExpertBuckets::Forward(const ParamState& state, ForwardMsg& m) {
  gpu::Backend* backend = state.backend();
  const int C = config_.d_model, F = config_.d_ff, n = m.rows;
  Kept kept;
  kept.rows = n;
  kept.dropout = gpu::ExpertDropout{m.training ? config_.expert_dropout : 0.0f, m.seed, static_cast<int64_t>(m.step),
                                    m.micro_batch, layer_, expert_};
  absl::Status status;
  absl::StatusOr<gpu::BucketRows> in = gpu::BucketRows::FromHost(backend, std::move(m.in));
  absl::StatusOr<DeviceArray> pre = DeviceArray::Create(backend, int64_t{n} * F);
  absl::StatusOr<DeviceArray> act = DeviceArray::Create(backend, int64_t{n} * F);
  absl::StatusOr<gpu::BucketRows> out = gpu::BucketRows::Allocate(backend, int64_t{n} * C);
  for (const absl::Status& s : {in.status(), pre.status(), act.status(), out.status()}) status.Update(s);
  if (!status.ok()) return status;
  gpu::ExpertForward(backend, out->data(), {pre->data(), act->data()}, in->data(), n, C, F,
                     layout_.Weights(state.params()), kept.dropout);
  absl::StatusOr<transport::Frame> frame = out->ToFrame(m.dtype);
  if (!frame.ok()) return frame.status();
  if (m.training) {
    kept.in = *std::move(in);
    kept.pre = *std::move(pre);
    kept.act = *std::move(act);
    kept_[m.micro_batch] = std::move(kept);
  }
  return frame;
}

absl::StatusOr<ExpertBuckets::Gradients> ExpertBuckets::Backward(const ParamState& state, BackwardMsg& m) {
  Kept& kept = kept_.at(m.micro_batch);
  gpu::Backend* backend = state.backend();
  const int C = config_.d_model, F = config_.d_ff, n = m.rows;
  absl::Status status;
  absl::StatusOr<gpu::BucketRows> dout = gpu::BucketRows::FromHost(backend, std::move(m.dout));
  absl::StatusOr<gpu::BucketRows> din = gpu::BucketRows::Allocate(backend, int64_t{n} * C);
  absl::StatusOr<DeviceArray> scratch = DeviceArray::Create(backend, int64_t{n} * F);
  absl::StatusOr<DeviceArray> grad = DeviceArray::Create(backend, state.size());
  for (const absl::Status& s : {dout.status(), din.status(), scratch.status(), grad.status()}) status.Update(s);
  if (status.ok()) status = backend->Zero(grad->data(), state.size() * sizeof(float));
  if (!status.ok()) return status;
  gpu::ExpertBackward(backend, din->data(), layout_.Grads(grad->data()), scratch->data(), dout->data(),
                      kept.in.data(), {kept.pre.data(), kept.act.data()}, n, C, F, layout_.Weights(state.params()),
                      kept.dropout);
  return Gradients{*std::move(din), *std::move(grad)};
}

}  // namespace sy::expert_host
