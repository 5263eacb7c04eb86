// The expert unit of one expert actor: a bucket's forward on the actor's weights (a
// training forward keeps its input and activations, by micro-batch, for the
// backward) and its backward (the input gradient, and the micro-batch's weight
// gradient as a block of gpu::ExpertLayout). Buckets arrive as the host floats the
// request was decoded into and leave as gpu::BucketRows, so on the CPU backend
// neither a bucket's input nor its output is copied between the wire and the expert.
// The actor (param_actor.h) decides whether a request may run; this runs it.
// Not thread-safe: owned by one actor.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "absl/status/statusor.h"
#include "common/transport/message.h"
#include "gpu/model/bucket_rows.h"
#include "gpu/model/config.h"
#include "gpu/model/expert.h"
#include "services/expert_host/param_actor_messages.h"
#include "services/expert_host/param_state.h"

namespace sy::expert_host {

class ExpertBuckets {
 public:
  // Expert `expert` of model layer `layer` (one of the Switch layers of `config`).
  ExpertBuckets(const gpu::ModelConfig& config, int layer, int expert);

  // The rows of micro-batch m's kept training forward; nullopt when none is kept.
  std::optional<int> KeptRows(uint32_t micro_batch) const;
  void Drop(uint32_t micro_batch) { kept_.erase(micro_batch); }
  void Clear() { kept_.clear(); }

  // Runs m's forward on `state`'s weights (consuming m.in) and returns the outputs
  // as a frame of m.dtype; a training forward keeps what its backward needs.
  absl::StatusOr<transport::Frame> Forward(const ParamState& state, ForwardMsg& m);

  struct Gradients {
    gpu::BucketRows din;  // (rows, d_model)
    DeviceArray weights;  // the weight gradient: a block of the expert's layout
  };
  // Runs m's backward (consuming m.dout) against the kept forward of m.micro_batch,
  // which must exist with m.rows rows; the kept forward stays until Drop.
  absl::StatusOr<Gradients> Backward(const ParamState& state, BackwardMsg& m);

 private:
  struct Kept {
    int rows = 0;
    gpu::BucketRows in;       // (rows, C)
    DeviceArray pre, act;     // (rows, F) each
    gpu::ExpertDropout dropout;
  };

  gpu::ModelConfig config_;
  gpu::ExpertLayout layout_;
  int layer_;
  int expert_;
  std::map<uint32_t, Kept> kept_;  // training forwards of the open step, by micro-batch
};

}  // namespace sy::expert_host
