// The options every training process shares (sy-trainer, sy-expert-host, and sy-local
// for its children): the run, the model and the training. The flags that fill them are
// defined once, in model_flags.h (model and training) and node_flags.h (the run); this
// file holds the plain struct and its checks, a pure function, so code that only
// consumes options links no flag definitions. Thread-safe (no shared state).
//
// The model defaults (d_model 128, 4 layers, 4 heads,
// 8 experts, context 128) with 2048 tokens per step, small enough for
// `sy-local --steps=30` to take about a minute. The tinyshakespeare recipe
// (validation loss 1.81 nats/byte after 800 steps, below 2.0 from step ~500;
// 8.5 minutes on this shared 2-core machine) doubles the micro-batch:
//   sy-trainer --standalone --data=tinyshakespeare.txt --steps=800
//     --micro_batch=16 --warmup=50 --eval_every=100 --workdir=DIR
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace sy::cluster {

struct TrainerOptions {
  // ---- run ----
  bool standalone = false;  // --standalone: all experts in-process
  std::string data;         // --data: corpus file (bytes)
  int64_t steps = 0;        // --steps: global steps to train (required, > 0)
  std::string workdir;      // --workdir: metrics.jsonl and summary.json go here ("" = none)
  std::string device = "cpu";  // --device: cpu | cuda:N
  int threads = 0;          // --threads: compute threads (0 = all cores)
  std::string log_level = "info";
  // ---- model ----
  int layers = 4;
  int d_model = 128;        // C: model width
  int heads = 4;            // attention heads (they divide d_model)
  int d_ff = 512;           // F: FFN and expert hidden width
  int experts = 8;          // per Switch layer (0: a dense model)
  int moe_every = 2;        // layer l is a Switch layer when l % moe_every == moe_every - 1 (0: none)
  int context = 128;        // T: sequence length
  // ---- training ----
  int micro_batch = 8;      // B: sequences per micro-batch
  int micro_batches = 2;    // M: micro-batches per global step
  double capacity_factor = 1.25;       // training
  double eval_capacity_factor = 2.0;   // validation
  double lr = 3e-3;         // peak learning rate; min_lr = 0.1 * lr (shared spec)
  int64_t warmup = 20;      // linear warmup steps
  double weight_decay = 0.1;
  double clip = 1.0;        // global grad-norm clip (0 disables)
  double dropout = 0.0;
  double expert_dropout = 0.0;
  double jitter = 0.0;      // router jitter epsilon (0 disables)
  double lb_alpha = 0.1;    // load-balancing loss weight (see gpu::ModelConfig::lb_alpha)
  double z_beta = 0.001;    // router z-loss weight (0 disables)
  double skew = 0.0;        // router init skew toward the first experts (0: none; see gpu::ModelConfig::skew)
  uint64_t seed = 1;
  std::string wire_dtype = "f32";  // f32 | bf16 (bucket activations and their gradients)
  // f32 | bf16: dense gradients pushed and dense parameters pulled (not the router's,
  // which stays f32); the hosts keep f32 master weights and moments either way.
  std::string dense_wire_dtype = "f32";
  int64_t eval_every = 50;  // validation every K steps (and always at the end; 0 = end only)
  int eval_batches = 8;     // validation micro-batches per evaluation
};

// InvalidArgument naming the flag for a value out of range or an inconsistent
// combination (e.g. d_model not divisible by heads); with `require_run_flags` (a
// trainer), --data and --steps must be given too.
absl::Status CheckTrainerOptions(const TrainerOptions& options, bool require_run_flags);

}  // namespace sy::cluster
