// Single-process training: the whole model, experts included, on one backend.
// Global step s (1..steps) runs micro-batches m = 0..M-1 (TrainerCore), adds each
// gradient to the fixed pairwise tree, clips the sum and applies AdamW at the
// scheduled learning rate; the shared training loop (training_loop.h) validates,
// prints a progress line per step and, with a workdir, writes metrics.jsonl and
// summary.json. With --wire_dtype=bf16 expert inputs/outputs and their gradients
// are rounded to bf16 where a distributed run would send them. Not thread-safe.
//
//   auto trainer = StandaloneTrainer::Create(options).value();
//   RunResult r = trainer->Run(std::cout).value();   // r.param_checksum
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gpu/model/grad_tree.h"
#include "gpu/model/inprocess_executor.h"
#include "gpu/model/model.h"
#include "gpu/model/optimizer.h"
#include "services/cluster/options.h"
#include "services/trainer/bf16_wire_executor.h"
#include "services/trainer/metrics_files.h"
#include "services/trainer/run_records.h"
#include "services/trainer/trainer_core.h"
#include "services/trainer/training_loop.h"

namespace sy::trainer {

class StandaloneTrainer : private ParameterSource, private TrainerRole {
 public:
  // Loads the corpus, creates the backend for options.device, the model
  // (initialised from options.seed) and the optimizer. NotFound / InvalidArgument
  // for a missing or too short corpus or a bad configuration;
  // FailedPrecondition / Unimplemented for an unavailable device.
  static absl::StatusOr<std::unique_ptr<StandaloneTrainer>> Create(const cluster::TrainerOptions& options);
  ~StandaloneTrainer() override;

  // Trains options.steps steps, printing one progress line per step to `progress`.
  // `live` (optional): the /metrics figures, updated as steps train.
  absl::StatusOr<RunResult> Run(std::ostream& progress, TrainerMetrics* live = nullptr);

  // One global step (1-based `step`, used for the data, dropout and LR schedule).
  absl::StatusOr<StepMetrics> TrainStep(int64_t step);
  // Mean cross-entropy (nats/byte) over the eval_batches validation micro-batches.
  absl::StatusOr<double> Validate() { return core_->ValidationLoss(); }
  // Checksum of the current parameters (see services/cluster/param_checksum.h).
  absl::StatusOr<std::string> ParamChecksumHex() const { return core_->ParamChecksumHex(); }
  const gpu::Model& model() const { return core_->model(); }

 private:
  StandaloneTrainer() = default;

  // ParameterSource: every micro-batch into the gradient tree, then AdamW.
  std::vector<int> BeginStep(int64_t step) override;
  absl::Status AddMicroBatch(int64_t step, int m, const gpu::ParamBlock& grads,
                             cluster::MicroBatchStatsValue& stats) override;
  absl::Status Apply(int64_t step, const std::vector<cluster::MicroBatchStatsValue>& mine,
                     std::optional<AppliedStep>* applied) override;

  // TrainerRole: the only trainer, nothing interrupts it and a failure ends the run.
  bool leader() const override { return true; }
  absl::StatusOr<LoopTurn> NextTurn(RunRecords&) override { return LoopTurn{}; }
  absl::Status TrainStep(int64_t step, std::optional<AppliedStep>* applied) override {
    return core_->TrainStep(step, *this, applied);
  }
  void StepDone(int64_t) override {}
  absl::StatusOr<double> Validate(int64_t) override { return core_->ValidationLoss(); }
  absl::StatusOr<std::string> FinalChecksum(RunResult*) override { return core_->FinishModel(); }
  absl::Status AwaitRecovery(int64_t, const absl::Status& failure) override { return failure; }
  RunShape shape() const override { return {}; }

  TrainerBase base_;  // the backend outlives everything below, which allocates on it
  // With --wire_dtype=bf16 the experts run behind a rounding wrapper (declared
  // before the model, which holds a pointer to it, so they outlive the model).
  std::unique_ptr<gpu::InProcessExpertExecutor> expert_executor_;
  std::unique_ptr<Bf16WireExecutor> wire_executor_;
  std::unique_ptr<TrainerCore> core_;
  std::unique_ptr<gpu::AdamW> optimizer_;
  std::unique_ptr<gpu::ParamBlock> step_grads_;  // the tree's sum, for the optimizer
  std::unique_ptr<gpu::GradTree> tree_;
  // --dense_wire_dtype=bf16, as a cluster does it: the f32 master weights the optimizer
  // updates (a cluster's hosts hold them), while the model computes with a copy whose
  // dense parameters (router excepted) are rounded to bf16 (what trainers pull), and the
  // tree rounds every gradient sum of those to bf16 (what the hosts' trees do).
  std::unique_ptr<gpu::ParamBlock> master_;
};

}  // namespace sy::trainer
