// Definitions of the model and training flags (see model_flags.h).
#include "services/cluster/model_flags.h"

#include <cstdint>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/flags/flags.h"

// The defaults are the option structs' own (one source).
using sy::cluster::TrainerOptions;

// ---- model ----
ABSL_FLAG(int32_t, layers, TrainerOptions().layers, "transformer blocks");
ABSL_FLAG(int32_t, d_model, TrainerOptions().d_model, "model width C");
ABSL_FLAG(int32_t, heads, TrainerOptions().heads, "attention heads (must divide d_model)");
ABSL_FLAG(int32_t, d_ff, TrainerOptions().d_ff, "FFN / expert hidden width F");
ABSL_FLAG(int32_t, experts, TrainerOptions().experts, "experts per Switch layer (0: dense model)");
ABSL_FLAG(int32_t, moe_every, TrainerOptions().moe_every,
          "layer l is a Switch layer when l % moe_every == moe_every-1 (0: dense)");
ABSL_FLAG(int32_t, context, TrainerOptions().context, "sequence length T");
// ---- training ----
ABSL_FLAG(int32_t, micro_batch, TrainerOptions().micro_batch, "sequences per micro-batch B");
ABSL_FLAG(int32_t, micro_batches, TrainerOptions().micro_batches, "micro-batches per global step M");
ABSL_FLAG(double, capacity_factor, TrainerOptions().capacity_factor,
          "expert capacity factor in training, in [0.001, 1000]");
ABSL_FLAG(double, eval_capacity_factor, TrainerOptions().eval_capacity_factor,
          "expert capacity factor in validation, in [0.001, 1000]");
ABSL_FLAG(double, lr, TrainerOptions().lr, "peak learning rate (cosine decay to 0.1*lr at the last step), in [0, 10]");
ABSL_FLAG(int64_t, warmup, TrainerOptions().warmup, "linear warmup steps");
ABSL_FLAG(double, weight_decay, TrainerOptions().weight_decay,
          "AdamW decoupled weight decay (matrices only), in [0, 10]");
ABSL_FLAG(double, clip, TrainerOptions().clip, "global gradient-norm clip (0: off)");
ABSL_FLAG(double, dropout, TrainerOptions().dropout, "dropout rate on residual branches, in [0, 0.99]");
ABSL_FLAG(double, expert_dropout, TrainerOptions().expert_dropout, "dropout rate inside experts, in [0, 0.99]");
ABSL_FLAG(double, jitter, TrainerOptions().jitter, "router input jitter epsilon, in [0, 0.99] (0: off)");
ABSL_FLAG(double, lb_alpha, TrainerOptions().lb_alpha,
          "load-balancing loss weight alpha (loss += alpha * experts * sum_i f_i * P_i per Switch layer), in [0, 100]");
ABSL_FLAG(double, z_beta, TrainerOptions().z_beta,
          "router z-loss weight beta (loss += beta * mean(logsumexp(logits)^2)), in [0, 100] (0: off)");
ABSL_FLAG(double, skew, TrainerOptions().skew,
          "router init skew: the first max(1, experts/8) experts' router columns start scaled by 1+X, so they get "
          "most tokens (hot-expert tests; 0: off), in [0, 1000]");
ABSL_FLAG(uint64_t, seed, TrainerOptions().seed, "seed of data order, init, dropout and jitter");
ABSL_FLAG(std::string, wire_dtype, TrainerOptions().wire_dtype,
          "expert activations on the wire, f32 or bf16; standalone rounds at the same points");
ABSL_FLAG(int64_t, eval_every, TrainerOptions().eval_every, "validation every K steps, and at the end (0: end only)");
ABSL_FLAG(int32_t, eval_batches, TrainerOptions().eval_batches, "validation micro-batches per evaluation");

namespace sy::cluster {
namespace {

// Every flag defined above, in definition order.
std::vector<const absl::CommandLineFlag*> ModelFlags() {
  return {&absl::GetFlagReflectionHandle(FLAGS_layers),
          &absl::GetFlagReflectionHandle(FLAGS_d_model),
          &absl::GetFlagReflectionHandle(FLAGS_heads),
          &absl::GetFlagReflectionHandle(FLAGS_d_ff),
          &absl::GetFlagReflectionHandle(FLAGS_experts),
          &absl::GetFlagReflectionHandle(FLAGS_moe_every),
          &absl::GetFlagReflectionHandle(FLAGS_context),
          &absl::GetFlagReflectionHandle(FLAGS_micro_batch),
          &absl::GetFlagReflectionHandle(FLAGS_micro_batches),
          &absl::GetFlagReflectionHandle(FLAGS_capacity_factor),
          &absl::GetFlagReflectionHandle(FLAGS_eval_capacity_factor),
          &absl::GetFlagReflectionHandle(FLAGS_lr),
          &absl::GetFlagReflectionHandle(FLAGS_warmup),
          &absl::GetFlagReflectionHandle(FLAGS_weight_decay),
          &absl::GetFlagReflectionHandle(FLAGS_clip),
          &absl::GetFlagReflectionHandle(FLAGS_dropout),
          &absl::GetFlagReflectionHandle(FLAGS_expert_dropout),
          &absl::GetFlagReflectionHandle(FLAGS_jitter),
          &absl::GetFlagReflectionHandle(FLAGS_lb_alpha),
          &absl::GetFlagReflectionHandle(FLAGS_z_beta),
          &absl::GetFlagReflectionHandle(FLAGS_skew),
          &absl::GetFlagReflectionHandle(FLAGS_seed),
          &absl::GetFlagReflectionHandle(FLAGS_wire_dtype),
          &absl::GetFlagReflectionHandle(FLAGS_eval_every),
          &absl::GetFlagReflectionHandle(FLAGS_eval_batches)};
}

}  // namespace

void ReadModelFlags(TrainerOptions* o) {
  o->layers = absl::GetFlag(FLAGS_layers);
  o->d_model = absl::GetFlag(FLAGS_d_model);
  o->heads = absl::GetFlag(FLAGS_heads);
  o->d_ff = absl::GetFlag(FLAGS_d_ff);
  o->experts = absl::GetFlag(FLAGS_experts);
  o->moe_every = absl::GetFlag(FLAGS_moe_every);
  o->context = absl::GetFlag(FLAGS_context);
  o->micro_batch = absl::GetFlag(FLAGS_micro_batch);
  o->micro_batches = absl::GetFlag(FLAGS_micro_batches);
  o->capacity_factor = absl::GetFlag(FLAGS_capacity_factor);
  o->eval_capacity_factor = absl::GetFlag(FLAGS_eval_capacity_factor);
  o->lr = absl::GetFlag(FLAGS_lr);
  o->warmup = absl::GetFlag(FLAGS_warmup);
  o->weight_decay = absl::GetFlag(FLAGS_weight_decay);
  o->clip = absl::GetFlag(FLAGS_clip);
  o->dropout = absl::GetFlag(FLAGS_dropout);
  o->expert_dropout = absl::GetFlag(FLAGS_expert_dropout);
  o->jitter = absl::GetFlag(FLAGS_jitter);
  o->lb_alpha = absl::GetFlag(FLAGS_lb_alpha);
  o->z_beta = absl::GetFlag(FLAGS_z_beta);
  o->skew = absl::GetFlag(FLAGS_skew);
  o->seed = absl::GetFlag(FLAGS_seed);
  o->wire_dtype = absl::GetFlag(FLAGS_wire_dtype);
  o->eval_every = absl::GetFlag(FLAGS_eval_every);
  o->eval_batches = absl::GetFlag(FLAGS_eval_batches);
}

std::vector<std::string> ChangedModelFlags() {
  std::vector<std::string> changed;
  for (const absl::CommandLineFlag* flag : ModelFlags()) {
    const std::string value = flag->CurrentValue();
    if (value != flag->DefaultValue()) changed.push_back(absl::StrCat("--", flag->Name(), "=", value));
  }
  return changed;
}

absl::StatusOr<TrainerOptions> ParseModelFlags(const std::vector<std::string>& args) {
  if (absl::Status s = flags::ParseFlagArgs(args); !s.ok()) return s;
  TrainerOptions options;
  ReadModelFlags(&options);
  if (absl::Status s = CheckTrainerOptions(options, /*require_run_flags=*/false); !s.ok()) return s;
  return options;
}

}  // namespace sy::cluster
