// The arithmetic every trainer shares, standalone or one of a distributed run: the
// model replica on its backend and the corpus; a global step's micro-batches m (cut
// from (seed, step, m), differentiated with grad_scale 1/M into one gradient
// buffer) and their stats summed into the step's metrics in micro-batch order;
// validation (CE on fixed windows of the val split); the parameter checksum. Where
// each micro-batch's gradient goes and where the step's new parameters come from is
// a ParameterSource's: the in-process optimizer or the expert hosts. Not thread-safe.
//
//   TrainerBase base = LoadTrainerBase(options).value();   // kept by the trainer, first
//   auto core = TrainerCore::Create(options, base, experts).value();
//   core->TrainStep(step, source, &applied);
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gpu/backend.h"
#include "gpu/model/model.h"
#include "services/cluster/options.h"
#include "services/cluster/step_wire.h"
#include "services/trainer/corpus.h"
#include "services/trainer/metrics_files.h"

namespace sy::trainer {

// What a trainer loads before it builds its model.
struct TrainerBase {
  gpu::ModelConfig config;
  Corpus corpus;
  std::unique_ptr<gpu::Backend> backend;
};

// The model configuration of `options`, the corpus (NotFound / InvalidArgument for a
// missing or too short one) and the backend for options.device (FailedPrecondition /
// Unimplemented for an unavailable device).
absl::StatusOr<TrainerBase> LoadTrainerBase(const cluster::TrainerOptions& options);

// A step the parameters now hold: its metrics (tokens_per_s left 0: the caller times
// the step) and the tokens it trained on.
struct AppliedStep {
  StepMetrics metrics;
  int64_t tokens = 0;
};

// Step `step` from every micro-batch's `stats`, summed in micro-batch order: the
// losses are their mean, expert tokens and dropped tokens their sum. bytes_sent is left unset.
AppliedStep SumMicroBatches(int64_t step, const std::vector<cluster::MicroBatchStatsValue>& stats,
                            int num_micro_batches);

// Where a step's gradients go and its new parameters come from.
class ParameterSource {
 public:
  virtual ~ParameterSource() = default;
  // Starts step `step`: the micro-batches this trainer differentiates, ascending.
  virtual std::vector<int> BeginStep(int64_t step) = 0;
  // Micro-batch m's gradient (already scaled by 1/M) and its stats, which the source may complete (bytes_sent).
  virtual absl::Status AddMicroBatch(int64_t step, int m, const gpu::ParamBlock& grads,
                                     cluster::MicroBatchStatsValue& stats) = 0;
  // After this trainer's micro-batches (`mine`): the parameters become version `step`.
  // Sets `applied` once the update is applied when this trainer records the step (it
  // stays set when a later part of the step fails).
  virtual absl::Status Apply(int64_t step, const std::vector<cluster::MicroBatchStatsValue>& mine,
                             std::optional<AppliedStep>* applied) = 0;
};

class TrainerCore {
 public:
  // The model initialised from options.seed on `base`'s backend, its Switch layers'
  // experts behind `experts` (null: in-process), and the gradient buffer. `base` and
  // `experts` must outlive the core.
  static absl::StatusOr<std::unique_ptr<TrainerCore>> Create(const cluster::TrainerOptions& options,
                                                             const TrainerBase& base, gpu::ExpertExecutor* experts);

  // One global step (1-based: it keys the data, dropout and jitter) through `source`.
  absl::Status TrainStep(int64_t step, ParameterSource& source, std::optional<AppliedStep>* applied);
  // Mean cross-entropy (nats/byte) over the eval_batches validation micro-batches.
  absl::StatusOr<double> ValidationLoss();
  // Checksum of the replica's parameters (see services/cluster/param_checksum.h).
  absl::StatusOr<std::string> ParamChecksumHex() const;
  // The end of a run, once the replica holds every parameter (the leader after the last
  // step): the checksum, and with a workdir the model saved there (model.bin and
  // model.json, services/cluster/saved_model.h) as version options.steps.
  absl::StatusOr<std::string> FinishModel() const;

  const cluster::TrainerOptions& options() const { return options_; }
  gpu::Model& model() const { return *model_; }

 private:
  TrainerCore(const cluster::TrainerOptions& options, const TrainerBase& base) : options_(options), base_(base) {}

  const cluster::TrainerOptions options_;
  const TrainerBase& base_;
  std::unique_ptr<gpu::Model> model_;
  std::unique_ptr<gpu::ParamBlock> grads_;  // each micro-batch's gradient in turn
};

}  // namespace sy::trainer
