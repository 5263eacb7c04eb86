// Options -> model/optimizer configuration (see model_options.h).
#include "services/cluster/model_options.h"

namespace sy::cluster {

absl::StatusOr<gpu::ModelConfig> ModelConfigFromOptions(const TrainerOptions& o) {
  gpu::ModelConfig c;
  c.layers = o.layers;
  c.d_model = o.d_model;
  c.heads = o.heads;
  c.d_ff = o.d_ff;
  c.experts = o.experts;
  c.moe_every = o.moe_every;
  c.context = o.context;
  c.capacity_factor = static_cast<float>(o.capacity_factor);
  c.eval_capacity_factor = static_cast<float>(o.eval_capacity_factor);
  c.jitter_eps = static_cast<float>(o.jitter);
  c.lb_alpha = static_cast<float>(o.lb_alpha);
  c.z_beta = static_cast<float>(o.z_beta);
  c.dropout = static_cast<float>(o.dropout);
  c.expert_dropout = static_cast<float>(o.expert_dropout);
  c.skew = static_cast<float>(o.skew);
  if (absl::Status s = c.Validate(); !s.ok()) return s;
  return c;
}

gpu::AdamWConfig AdamWConfigFromOptions(const TrainerOptions& o) {
  gpu::AdamWConfig c;
  c.weight_decay = static_cast<float>(o.weight_decay);
  c.max_grad_norm = static_cast<float>(o.clip);
  return c;
}

}  // namespace sy::cluster
