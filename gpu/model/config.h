// The Switch-Transformer model configuration shared by the C++ model, the PyTorch
// oracle and the trainer (the "shared model specification"). A plain value.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace sy::gpu {

struct ModelConfig {
  int vocab = 256;               // byte-level
  int layers = 4;                // L
  int d_model = 128;             // C
  int heads = 4;                 // H (divides d_model)
  int d_ff = 512;                // F
  int experts = 8;               // E (0 = dense model)
  int moe_every = 1;             // layer l is Switch when (l % moe_every) == moe_every-1; 0 = dense
  int context = 128;             // T (max sequence length; wpe rows)
  float capacity_factor = 1.25f;       // training capacity factor
  float eval_capacity_factor = 2.0f;   // evaluation capacity factor
  // Load-balancing loss weight. The paper's 0.01 leaves 5-20% of the tokens over
  // capacity for the first hundreds of steps of our Adam runs; 0.1 brings that under
  // 5% by step 50 (EXPERIMENTS.md, "Router collapse").
  float lb_alpha = 0.1f;
  float z_beta = 0.001f;         // router z-loss weight (0 disables)
  float jitter_eps = 0.0f;       // multiplicative router jitter (training only; 0 = off)
  float dropout = 0.1f;          // dense dropout (attention and FFN outputs)
  float expert_dropout = 0.4f;   // dropout on the experts' GELU output
  // Router init skew X >= 0 (tests and benchmarks of hot-expert rebalancing): the
  // router columns of the favoured experts 0..SkewedExperts()-1 start scaled by 1+X,
  // so those experts win top-1 routing far more often. 0 leaves the init unchanged.
  float skew = 0.0f;

  // OK, or kInvalidArgument naming the first bad field and why.
  absl::Status Validate() const;
  // True when layer l has a Switch FFN (needs a valid config).
  bool IsSwitchLayer(int l) const {
    return experts > 0 && moe_every > 0 && (l % moe_every) == moe_every - 1;
  }
  // Experts favoured by `skew`: max(1, experts / 8).
  int SkewedExperts() const { return experts >= 8 ? experts / 8 : 1; }
  int head_size() const { return d_model / heads; }
  // Tokens an expert admits out of `tokens` at capacity factor `factor`: ceil(factor*tokens/E).
  int Capacity(int tokens, float factor) const;
  std::string DebugString() const;
};

}  // namespace sy::gpu
