// The Switch-Transformer language model of the shared spec on a Backend: owns the
// parameter block and a preallocated activation arena (grown to the largest B*T
// seen), and runs forward+backward of one micro-batch or an evaluation pass.
// Expert FFNs go through an ExpertExecutor (in-process by default).
// Not thread-safe: one thread drives one Model.
//
//   auto model = Model::Create(config, backend, /*seed=*/1).value();
//   auto grads = model->NewGradBlock().value();
//   auto stats = model->ForwardBackward(x, y, B, T, {seed, step, m, true}, 1.0f/M, grads.get());
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "gpu/backend.h"
#include "gpu/model/config.h"
#include "gpu/model/expert.h"
#include "gpu/model/grad_stages.h"
#include "gpu/model/params.h"

namespace sy::gpu {

// Keys the counter-based randomness of one micro-batch.
struct StepContext {
  uint64_t seed = 0;
  int64_t step = 0;
  int64_t micro_batch = 0;
  bool training = true;         // dropout, expert dropout, jitter, training capacity
  bool record_routing = false;  // fill MicroBatchStats::routing
  bool record_logits = false;   // fill MicroBatchStats::logits
};

// Routing decisions of one Switch layer, per token n = b*T + t.
struct LayerRouting {
  int layer = 0;
  std::vector<int32_t> expert;   // argmax expert
  std::vector<uint8_t> dropped;  // 1 when over capacity
};

struct MicroBatchStats {
  double loss = 0;  // ce + lb + z
  double ce = 0;    // mean cross-entropy (nats/token)
  double lb = 0;    // load-balancing loss summed over Switch layers
  double z = 0;     // router z-loss summed over Switch layers
  int64_t tokens = 0;
  int64_t dropped_tokens = 0;  // summed over Switch layers
  std::vector<int64_t> switch_layer_dropped_tokens;  // per Switch layer (in layer order): tokens over capacity
  // Per Switch layer (in layer order): tokens per expert after argmax, before capacity.
  std::vector<std::vector<int64_t>> expert_counts;
  std::vector<LayerRouting> routing;  // when StepContext::record_routing
  std::vector<float> logits;          // (B*T, V) when StepContext::record_logits
};

// The deterministic dropout key of (ctx, layer, site): CounterRng(seed, kDropout,
// step, micro_batch << 12 | layer << 4 | site); site 0 = attention, 1 = FFN.
RngKey DropoutKey(const StepContext& ctx, int layer, int site);
// Router jitter key: CounterRng(seed, kRouterJitter, step, micro_batch << 12 | layer),
// element index n * C + c.
RngKey JitterKey(const StepContext& ctx, int layer);

class Model {
 public:
  // Validates `config`, allocates parameters on `backend` (must outlive the model)
  // and initialises them per the spec from `seed`. `executor` (optional, must
  // outlive the model) replaces the in-process expert executor.
  static absl::StatusOr<std::unique_ptr<Model>> Create(const ModelConfig& config,
                                                       Backend* backend, uint64_t seed,
                                                       ExpertExecutor* executor = nullptr);
  ~Model();

  const ModelConfig& config() const { return config_; }
  Backend* backend() const { return backend_; }
  ParamBlock& params() { return *params_; }
  const ParamBlock& params() const { return *params_; }
  // A new zeroed block with the parameter layout (for gradients, moments).
  absl::StatusOr<std::unique_ptr<ParamBlock>> NewGradBlock() const;

  // Forward + backward of one micro-batch: inputs/targets (B*T) host int32 in
  // [0, vocab), 1 <= T <= context. Writes (overwrites) grads = grad_scale *
  // d(loss)/d(params). Bad input: kInvalidArgument, nothing changed.
  absl::StatusOr<MicroBatchStats> ForwardBackward(absl::Span<const int32_t> inputs,
                                                  absl::Span<const int32_t> targets, int B,
                                                  int T, const StepContext& ctx,
                                                  float grad_scale, ParamBlock* grads);
  // Tells `listener` (null: nobody; must outlive its use) during each ForwardBackward
  // as groups of gradients become final (grad_stages.h).
  void set_grad_listener(GradListener* listener);
  // Forward only: no dropout or jitter, evaluation capacity factor.
  absl::StatusOr<MicroBatchStats> Evaluate(absl::Span<const int32_t> inputs,
                                           absl::Span<const int32_t> targets, int B, int T,
                                           bool record_routing = false,
                                           bool record_logits = false);

 private:
  class Impl;
  Model(const ModelConfig& config, Backend* backend);
  ModelConfig config_;
  Backend* backend_;
  std::unique_ptr<ParamBlock> params_;
  std::unique_ptr<Impl> impl_;
};

// Initialises `params` per the spec: matrices truncated normal(0, sqrt(0.1/fan_in))
// cut at 2 std, wte/wpe std 1/sqrt(d_model), biases 0, LN weights 1; deterministic from
// CounterRng(seed, kInit, param_index).
absl::Status InitParams(const ModelConfig& config, uint64_t seed, ParamBlock* params);
// Elements [begin, end) of one parameter's initial values into host memory out
// (end - begin floats); param_index is its index in ParamInfos(config). Lets an
// expert host initialise just its experts' slices, identical to InitParams.
void InitParamRange(const ParamInfo& info, uint32_t param_index, uint64_t seed, int64_t begin, int64_t end,
                    float* out);

}  // namespace sy::gpu
