// An ExpertExecutor that rounds to bf16 exactly the tensors a distributed run
// sends over the wire with --wire_dtype=bf16: a bucket's input and output in
// forward, its output gradient and input gradient in backward. It wraps the
// executor that computes, so a single process trains exactly as if its experts
// lived on hosts behind a bf16 wire (the expert sees, and keeps for backward, the
// rounded input). Weight gradients never cross the wire and stay f32.
// Not thread-safe: used by one model.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gpu/backend.h"
#include "gpu/model/expert.h"

namespace sy::gpu {
class ParamBlock;
}  // namespace sy::gpu

namespace sy::trainer {

class Bf16WireExecutor : public gpu::ExpertExecutor {
 public:
  // Bucket rows are d_model floats on `backend` (which must outlive this).
  Bf16WireExecutor(gpu::Backend* backend, int d_model);
  ~Bf16WireExecutor() override;
  Bf16WireExecutor(const Bf16WireExecutor&) = delete;
  Bf16WireExecutor& operator=(const Bf16WireExecutor&) = delete;

  // The executor that computes (must outlive this). It is set after the model
  // exists because the in-process executor needs the model's parameters.
  void set_inner(gpu::ExpertExecutor* inner) { inner_ = inner; }

  // FailedPrecondition until set_inner; otherwise the inner executor's status.
  absl::Status Forward(const gpu::ExpertCall& call, absl::Span<const gpu::ExpertBucket> buckets) override;
  absl::Status Backward(const gpu::ExpertCall& call, absl::Span<const gpu::ExpertBucketGrad> buckets) override;

 private:
  struct DeviceBuffer {
    float* data = nullptr;
    int64_t capacity = 0;  // floats
  };
  // `buffer` holding at least `floats` floats (contents not kept when it grows).
  absl::StatusOr<float*> Reserve(DeviceBuffer& buffer, int64_t floats);
  // Copies the rows of every bucket into `buffer` back to back and rounds them;
  // returns the start of each bucket's copy.
  absl::StatusOr<std::vector<float*>> PackRounded(DeviceBuffer& buffer, const std::vector<const float*>& sources,
                                                  const std::vector<int>& rows);

  gpu::Backend* backend_;
  int d_model_;
  gpu::ExpertExecutor* inner_ = nullptr;
  std::map<int, DeviceBuffer> inputs_;  // per layer: rounded inputs, kept until that layer's backward
  DeviceBuffer grads_;                  // rounded output gradients of the current backward call
};

}  // namespace sy::trainer
