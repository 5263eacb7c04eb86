// In-process expert executor (see inprocess_executor.h): per Switch layer it keeps
// the packed activations of all buckets of the last forward, grown on demand.
#include "gpu/model/inprocess_executor.h"

#include "absl/strings/str_cat.h"

namespace sy::gpu {

struct InProcessExpertExecutor::LayerState {
  Backend* backend = nullptr;
  float* block = nullptr;  // pre (rows, F) | act (rows, F) | scratch (rows, F)
  int64_t capacity_rows = 0;
  int64_t micro_batch = -1;
  struct Saved {
    int expert;
    int rows;
    int64_t offset;
    const float* in;
  };
  std::vector<Saved> saved;
  ~LayerState() {
    if (block != nullptr) backend->Free(block);
  }
};

InProcessExpertExecutor::InProcessExpertExecutor(const ModelConfig& config, const ParamBlock* params)
    : config_(config), layout_(config), params_(params), backend_(params->backend()) {
  layers_.resize(config.layers);
}

InProcessExpertExecutor::~InProcessExpertExecutor() = default;

absl::StatusOr<InProcessExpertExecutor::LayerState*> InProcessExpertExecutor::State(int layer, int64_t rows) {
  if (layer < 0 || layer >= config_.layers || !config_.IsSwitchLayer(layer)) {
    return absl::InvalidArgumentError(absl::StrCat("expert executor: layer ", layer, " is not a Switch layer"));
  }
  auto& state = layers_[layer];
  if (state == nullptr) {
    state = std::make_unique<LayerState>();
    state->backend = backend_;
  }
  if (rows > state->capacity_rows) {
    if (state->block != nullptr) backend_->Free(state->block);
    state->block = nullptr;
    auto mem = backend_->Alloc(static_cast<size_t>(rows) * config_.d_ff * 3 * sizeof(float));
    if (!mem.ok()) return mem.status();
    state->block = static_cast<float*>(*mem);
    state->capacity_rows = rows;
  }
  return state.get();
}

absl::Status InProcessExpertExecutor::Forward(const ExpertCall& call, absl::Span<const ExpertBucket> buckets) {
  int64_t total = 0;
  std::vector<bool> seen(config_.experts, false);  // buckets run side by side: one per expert
  for (const ExpertBucket& b : buckets) {
    if (b.expert < 0 || b.expert >= config_.experts || b.rows < 0 || seen[b.expert]) {
      return absl::InvalidArgumentError(absl::StrCat("expert executor: bad bucket (expert ", b.expert, ", rows ",
                                                     b.rows, ", or a second bucket of that expert)"));
    }
    seen[b.expert] = true;
    total += b.rows;
  }
  auto state_or = State(call.layer, total);
  if (!state_or.ok()) return state_or.status();
  LayerState* state = *state_or;
  const int C = config_.d_model, F = config_.d_ff;
  const int64_t cap = state->capacity_rows;
  state->saved.clear();
  state->micro_batch = call.micro_batch;
  int64_t offset = 0;
  for (const ExpertBucket& b : buckets) {
    state->saved.push_back({b.expert, b.rows, offset, b.in});
    offset += b.rows;
  }
  // One grouped pass over the layer's experts, side by side on the backend's threads.
  backend_->RunIndependent(static_cast<int64_t>(buckets.size()), [&](int64_t i) {
    const ExpertBucket& b = buckets[i];
    const int64_t at = state->saved[i].offset;
    const ExpertActivations saved{state->block + at * F, state->block + (cap + at) * F};
    const ExpertDropout dropout{call.training ? call.expert_dropout : 0.0f, call.seed, call.step, call.micro_batch,
                                call.layer, b.expert};
    ExpertForward(backend_, b.out, saved, b.in, b.rows, C, F, layout_.ModelWeights(*params_, call.layer, b.expert),
                  dropout);
  });
  return absl::OkStatus();
}

absl::Status InProcessExpertExecutor::Backward(const ExpertCall& call, absl::Span<const ExpertBucketGrad> buckets) {
  if (call.layer < 0 || call.layer >= config_.layers || layers_[call.layer] == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("expert executor: no forward for layer ", call.layer));
  }
  LayerState* state = layers_[call.layer].get();
  if (state->micro_batch != call.micro_batch || buckets.size() != state->saved.size()) {
    return absl::FailedPreconditionError("expert executor: backward does not match the last forward");
  }
  if (call.grads == nullptr) return absl::InvalidArgumentError("expert executor: backward needs a gradient block");
  const int C = config_.d_model, F = config_.d_ff;
  const int64_t cap = state->capacity_rows;
  const ExpertGrads layer_grads = layout_.ModelGrads(*call.grads, call.layer, 0);
  if (layer_grads.w_in == nullptr || layer_grads.b_in == nullptr || layer_grads.w_out == nullptr ||
      layer_grads.b_out == nullptr) {
    return absl::InvalidArgumentError("expert executor: gradient block lacks this layer's experts");
  }
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i].expert != state->saved[i].expert || buckets[i].rows != state->saved[i].rows) {
      return absl::FailedPreconditionError("expert executor: backward bucket differs from forward");
    }
  }
  // Side by side like Forward: each bucket has its own rows of the scratch third.
  backend_->RunIndependent(static_cast<int64_t>(buckets.size()), [&](int64_t i) {
    const ExpertBucketGrad& b = buckets[i];
    const LayerState::Saved& s = state->saved[i];
    const ExpertActivations saved{state->block + s.offset * F, state->block + (cap + s.offset) * F};
    const ExpertGrads grads = layout_.ModelGrads(*call.grads, call.layer, b.expert);
    const ExpertDropout dropout{call.training ? call.expert_dropout : 0.0f, call.seed, call.step, call.micro_batch,
                                call.layer, b.expert};
    ExpertBackward(backend_, b.din, grads, state->block + (2 * cap + s.offset) * F, b.dout, s.in, saved, b.rows, C,
                   F, layout_.ModelWeights(*params_, call.layer, b.expert), dropout);
  });
  return absl::OkStatus();
}

}  // namespace sy::gpu
