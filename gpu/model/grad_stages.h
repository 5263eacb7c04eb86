// When backward is done with a parameter. Backward runs from the loss to the
// embeddings, so the gradients of the final layer norm are final first, then those of
// the last transformer layer, ..., the first, and the embeddings' last (wte is tied to
// the output head, so it is only final once the encoder's part is in). A distributed
// trainer sends each group of dense gradients as soon as it is final, while backward
// goes on through the layers below, instead of all of them after the micro-batch.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "gpu/model/config.h"
#include "gpu/model/params.h"

namespace sy::gpu {

struct StepContext;

// The parameters (indices into ParamInfos(config)) whose gradients backward finalises
// at each of its stages, in the order it reaches them: {lnf_w, lnf_b}, then every
// parameter of layer L-1, ..., of layer 0, then {wte, wpe}. Every parameter is in
// exactly one stage.
std::vector<std::vector<uint32_t>> BackwardStages(const ModelConfig& config);

// Told by Model::ForwardBackward, on its own thread, at each stage of backward: the
// gradients of `params` in `grads` hold their final values for the micro-batch of
// `ctx` (the block's other gradients may still change). An error stops backward and
// is ForwardBackward's result.
class GradListener {
 public:
  virtual ~GradListener() = default;
  virtual absl::Status GradsReady(const StepContext& ctx, absl::Span<const uint32_t> params,
                                  const ParamBlock& grads) = 0;
};

}  // namespace sy::gpu
