// bf16 rounding at the wire's crossing points (see bf16_wire_executor.h).
#include "services/trainer/bf16_wire_executor.h"

namespace sy::trainer {

Bf16WireExecutor::Bf16WireExecutor(gpu::Backend* backend, int d_model) : backend_(backend), d_model_(d_model) {}

Bf16WireExecutor::~Bf16WireExecutor() {
  for (auto& [layer, buffer] : inputs_) backend_->Free(buffer.data);
  backend_->Free(grads_.data);
}

absl::StatusOr<float*> Bf16WireExecutor::Reserve(DeviceBuffer& buffer, int64_t floats) {
  if (floats <= buffer.capacity && buffer.data != nullptr) return buffer.data;
  if (buffer.data != nullptr) backend_->Free(buffer.data);
  buffer = DeviceBuffer{};
  absl::StatusOr<void*> mem = backend_->Alloc(static_cast<size_t>(floats > 0 ? floats : 1) * sizeof(float));
  if (!mem.ok()) return mem.status();
  buffer.data = static_cast<float*>(*mem);
  buffer.capacity = floats;
  return buffer.data;
}

absl::StatusOr<std::vector<float*>> Bf16WireExecutor::PackRounded(DeviceBuffer& buffer,
                                                                  const std::vector<const float*>& sources,
                                                                  const std::vector<int>& rows) {
  int64_t total = 0;
  for (int r : rows) total += static_cast<int64_t>(r) * d_model_;
  absl::StatusOr<float*> base = Reserve(buffer, total);
  if (!base.ok()) return base.status();
  std::vector<float*> starts;
  int64_t offset = 0;
  for (size_t i = 0; i < sources.size(); ++i) {
    const int64_t n = static_cast<int64_t>(rows[i]) * d_model_;
    starts.push_back(*base + offset);
    if (n > 0) {
      if (absl::Status s = backend_->CopyDeviceToDevice(*base + offset, sources[i], n * sizeof(float)); !s.ok()) {
        return s;
      }
    }
    offset += n;
  }
  backend_->RoundToBf16(*base, total);
  return starts;
}

absl::Status Bf16WireExecutor::Forward(const gpu::ExpertCall& call, absl::Span<const gpu::ExpertBucket> buckets) {
  if (inner_ == nullptr) return absl::FailedPreconditionError("bf16 wire executor: no inner executor set");
  std::vector<const float*> sources;
  std::vector<int> rows;
  for (const gpu::ExpertBucket& b : buckets) {
    sources.push_back(b.in);
    rows.push_back(b.rows);
  }
  absl::StatusOr<std::vector<float*>> rounded = PackRounded(inputs_[call.layer], sources, rows);
  if (!rounded.ok()) return rounded.status();
  std::vector<gpu::ExpertBucket> sent(buckets.begin(), buckets.end());
  for (size_t i = 0; i < sent.size(); ++i) sent[i].in = (*rounded)[i];
  if (absl::Status s = inner_->Forward(call, sent); !s.ok()) return s;
  for (const gpu::ExpertBucket& b : sent) backend_->RoundToBf16(b.out, static_cast<int64_t>(b.rows) * d_model_);
  return absl::OkStatus();
}

absl::Status Bf16WireExecutor::Backward(const gpu::ExpertCall& call,
                                        absl::Span<const gpu::ExpertBucketGrad> buckets) {
  if (inner_ == nullptr) return absl::FailedPreconditionError("bf16 wire executor: no inner executor set");
  std::vector<const float*> sources;
  std::vector<int> rows;
  for (const gpu::ExpertBucketGrad& b : buckets) {
    sources.push_back(b.dout);
    rows.push_back(b.rows);
  }
  absl::StatusOr<std::vector<float*>> rounded = PackRounded(grads_, sources, rows);
  if (!rounded.ok()) return rounded.status();
  std::vector<gpu::ExpertBucketGrad> sent(buckets.begin(), buckets.end());
  for (size_t i = 0; i < sent.size(); ++i) sent[i].dout = (*rounded)[i];
  if (absl::Status s = inner_->Backward(call, sent); !s.ok()) return s;
  for (const gpu::ExpertBucketGrad& b : sent) backend_->RoundToBf16(b.din, static_cast<int64_t>(b.rows) * d_model_);
  return absl::OkStatus();
}

}  // namespace sy::trainer
