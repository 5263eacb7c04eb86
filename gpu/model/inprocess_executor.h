// The in-process ExpertExecutor: runs the expert unit for every bucket of a Switch
// layer on the model's own backend, with the model's expert weights, writing the
// weight gradients into the micro-batch's gradient block. All buckets of a layer
// arrive in one call and are computed together (one grouped pass). Keeps each
// layer's activations for backward. Not thread-safe.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "gpu/model/config.h"
#include "gpu/model/expert.h"
#include "gpu/model/params.h"

namespace sy::gpu {

class InProcessExpertExecutor : public ExpertExecutor {
 public:
  // params: the model's parameter block (must outlive the executor).
  InProcessExpertExecutor(const ModelConfig& config, const ParamBlock* params);
  ~InProcessExpertExecutor() override;

  absl::Status Forward(const ExpertCall& call, absl::Span<const ExpertBucket> buckets) override;
  absl::Status Backward(const ExpertCall& call,
                        absl::Span<const ExpertBucketGrad> buckets) override;

 private:
  struct LayerState;
  absl::StatusOr<LayerState*> State(int layer, int64_t rows);

  ModelConfig config_;
  ExpertLayout layout_;
  const ParamBlock* params_;
  Backend* backend_;
  std::vector<std::unique_ptr<LayerState>> layers_;
};

}  // namespace sy::gpu
