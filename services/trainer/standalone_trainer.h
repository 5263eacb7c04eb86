// Single-process training: the whole model, experts included, on one backend.
// Global step s (1..steps) runs micro-batches m = 0..M-1, each cut from
// (seed, s, m) and differentiated with grad_scale 1/M into a gradient buffer,
// combines them in the fixed pairwise tree, clips, and applies AdamW at the
// scheduled learning rate. Validation (CE on fixed windows of the val split)
// runs every eval_every steps and after the last step. Writes a progress line per
// step and, with a workdir, metrics.jsonl and summary.json. With
// --wire_dtype=bf16 expert inputs/outputs and their gradients are rounded to
// bf16 where a distributed run would send them. Not thread-safe.
//
//   auto trainer = StandaloneTrainer::Create(options).value();
//   RunResult r = trainer->Run(std::cout).value();   // r.param_checksum
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "gpu/backend.h"
#include "gpu/model/grad_tree.h"
#include "gpu/model/inprocess_executor.h"
#include "gpu/model/model.h"
#include "gpu/model/optimizer.h"
#include "services/cluster/options.h"
#include "services/trainer/bf16_wire_executor.h"
#include "services/trainer/corpus.h"
#include "services/trainer/metrics_files.h"

namespace sy::trainer {

struct RunResult {
  int64_t steps = 0;
  double final_loss = 0;
  std::optional<double> final_val_loss;
  std::vector<std::pair<int64_t, double>> val_curve;  // (step, val loss) at each evaluation
  std::string param_checksum;  // 16 hex digits
  double median_tokens_per_s = 0;
  // Distributed runs only: actors held by more than one host at the end, and how
  // many of those whose replicas' state (weights + Adam moments) differed.
  std::optional<int> replicated_actors;
  std::optional<int> replica_mismatches;
};

// Ends a run the same way for every trainer: prints the checksum line and, when
// `workdir` is set, writes summary.json (hosts/trainers and the replica counts
// only for distributed runs).
absl::Status ReportRunEnd(const RunResult& result, const std::string& workdir, std::optional<int> hosts,
                          std::optional<int> trainers, std::ostream& progress);

class StandaloneTrainer {
 public:
  // Loads the corpus, creates the backend for options.device, the model
  // (initialised from options.seed) and the optimizer. NotFound / InvalidArgument
  // for a missing or too short corpus or a bad configuration;
  // FailedPrecondition / Unimplemented for an unavailable device.
  static absl::StatusOr<std::unique_ptr<StandaloneTrainer>> Create(const cluster::TrainerOptions& options);
  ~StandaloneTrainer();

  // Trains options.steps steps, printing one progress line per step to `progress`.
  absl::StatusOr<RunResult> Run(std::ostream& progress);

  // One global step (1-based `step`, used for the data, dropout and LR schedule).
  absl::StatusOr<StepMetrics> TrainStep(int64_t step);
  // Mean cross-entropy (nats/byte) over the eval_batches validation micro-batches.
  absl::StatusOr<double> Validate();
  // Checksum of the current parameters (see checksum.h).
  absl::StatusOr<std::string> ParamChecksumHex() const;
  const gpu::Model& model() const { return *model_; }

 private:
  StandaloneTrainer() = default;

  cluster::TrainerOptions options_;
  Corpus corpus_;
  std::unique_ptr<gpu::Backend> backend_;
  // With --wire_dtype=bf16 the experts run behind a rounding wrapper (declared
  // before the model, which holds a pointer to it, so they outlive the model).
  std::unique_ptr<gpu::InProcessExpertExecutor> expert_executor_;
  std::unique_ptr<Bf16WireExecutor> wire_executor_;
  std::unique_ptr<gpu::Model> model_;
  std::unique_ptr<gpu::AdamW> optimizer_;
  std::unique_ptr<gpu::ParamBlock> micro_grads_;  // each micro-batch in turn (the tree copies it)
  std::unique_ptr<gpu::ParamBlock> step_grads_;   // the tree's sum, for the optimizer
  std::unique_ptr<gpu::GradTree> tree_;
};

}  // namespace sy::trainer
