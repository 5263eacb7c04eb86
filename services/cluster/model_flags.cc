// Definitions of the model and training flags (see model_flags.h).
#include "services/cluster/model_flags.h"

#include <cstdint>

#include "common/flags/flags.h"
#include "common/flags/option_flags.h"

namespace {
// The flags defined below, each the copy of one TrainerOptions field.
struct ModelFlagsName;
constexpr auto ModelFlags = &sy::flags::OptionFlags<sy::cluster::TrainerOptions, ModelFlagsName>;
}  // namespace

// ---- model ----
SY_OPTION_FLAG(ModelFlags, int32_t, layers, "transformer blocks");
SY_OPTION_FLAG(ModelFlags, int32_t, d_model, "model width C");
SY_OPTION_FLAG(ModelFlags, int32_t, heads, "attention heads (must divide d_model)");
SY_OPTION_FLAG(ModelFlags, int32_t, d_ff, "FFN / expert hidden width F");
SY_OPTION_FLAG(ModelFlags, int32_t, experts, "experts per Switch layer (0: dense model)");
SY_OPTION_FLAG(ModelFlags, int32_t, moe_every,
               "layer l is a Switch layer when l % moe_every == moe_every-1 (0: dense)");
SY_OPTION_FLAG(ModelFlags, int32_t, context, "sequence length T");
// ---- training ----
SY_OPTION_FLAG(ModelFlags, int32_t, micro_batch, "sequences per micro-batch B");
SY_OPTION_FLAG(ModelFlags, int32_t, micro_batches, "micro-batches per global step M");
SY_OPTION_FLAG(ModelFlags, double, capacity_factor, "expert capacity factor in training, in [0.001, 1000]");
SY_OPTION_FLAG(ModelFlags, double, eval_capacity_factor, "expert capacity factor in validation, in [0.001, 1000]");
SY_OPTION_FLAG(ModelFlags, double, lr, "peak learning rate (cosine decay to 0.1*lr at the last step), in [0, 10]");
SY_OPTION_FLAG(ModelFlags, int64_t, warmup, "linear warmup steps");
SY_OPTION_FLAG(ModelFlags, double, weight_decay, "AdamW decoupled weight decay (matrices only), in [0, 10]");
SY_OPTION_FLAG(ModelFlags, double, clip, "global gradient-norm clip (0: off)");
SY_OPTION_FLAG(ModelFlags, double, dropout, "dropout rate on residual branches, in [0, 0.99]");
SY_OPTION_FLAG(ModelFlags, double, expert_dropout, "dropout rate inside experts, in [0, 0.99]");
SY_OPTION_FLAG(ModelFlags, double, jitter, "router input jitter epsilon, in [0, 0.99] (0: off)");
SY_OPTION_FLAG(
    ModelFlags, double, lb_alpha,
    "load-balancing loss weight alpha (loss += alpha * experts * sum_i f_i * P_i per Switch layer), in [0, 100]");
SY_OPTION_FLAG(ModelFlags, double, z_beta,
               "router z-loss weight beta (loss += beta * mean(logsumexp(logits)^2)), in [0, 100] (0: off)");
SY_OPTION_FLAG(ModelFlags, double, skew,
               "router init skew: the first max(1, experts/8) experts' router columns start scaled by 1+X, so they get "
               "most tokens (hot-expert tests; 0: off), in [0, 1000]");
SY_OPTION_FLAG(ModelFlags, uint64_t, seed, "seed of data order, init, dropout and jitter");
SY_OPTION_FLAG(ModelFlags, std::string, wire_dtype,
               "expert activations on the wire, f32 or bf16; standalone rounds at the same points");
SY_OPTION_FLAG(ModelFlags, std::string, dense_wire_dtype,
               "dense gradients and parameters on the wire (router excepted), f32 or bf16; hosts keep f32 "
               "master weights; every gradient sum is rounded to bf16, so any cluster shape and standalone "
               "train the same weights");
SY_OPTION_FLAG(ModelFlags, int64_t, eval_every, "validation every K steps, and at the end (0: end only)");
SY_OPTION_FLAG(ModelFlags, int32_t, eval_batches, "validation micro-batches per evaluation");

namespace sy::cluster {

void ReadModelFlags(TrainerOptions* options) { ModelFlags().ReadInto(options); }

std::vector<std::string> ChangedModelFlags() { return ModelFlags().ChangedFlags(); }

absl::StatusOr<TrainerOptions> ParseModelFlags(const std::vector<std::string>& args) {
  if (absl::Status s = flags::ParseFlagArgs(args); !s.ok()) return s;
  TrainerOptions options;
  ReadModelFlags(&options);
  if (absl::Status s = CheckTrainerOptions(options, /*require_run_flags=*/false); !s.ok()) return s;
  return options;
}

}  // namespace sy::cluster
