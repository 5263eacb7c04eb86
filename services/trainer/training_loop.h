// The one training loop of sy-trainer, standalone or distributed: trains steps in
// order, times each, validates every eval_every steps and after the last, records
// each step (RunRecords), and ends with the whole model's checksum, its saved weights
// (model.bin, model.json) and summary.json.
// What differs between the two runs is a TrainerRole's: how a step is trained and
// validated, how the final checksum is taken, whether a failure can be recovered from,
// and orders from outside (a coordinator's rollback or stop) between steps.
//
// A step's metrics are recorded once its update is applied, even when a later part of
// the step fails: a rollback to exactly that step (the hosts hold its result) records
// it, validation included, instead of replaying it.
//
//   RunRecords records = RunRecords::Open(options, role.leader(), std::cout).value();
//   RunResult r = RunTraining(options, role, records, /*first_step=*/1).value();
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/cluster/options.h"
#include "services/trainer/run_records.h"
#include "services/trainer/trainer_core.h"
#include "services/trainer/trainer_metrics.h"

namespace sy::trainer {

// What the loop does next, as a TrainerRole answers between steps.
struct LoopTurn {
  enum Kind {
    kGoOn,    // train the next step
    kReplay,  // the parameters are version `step` again: train from step + 1
    kLeave,   // this trainer is no longer part of the run, which it left after `step`
  };
  Kind kind = kGoOn;
  int64_t step = 0;
};

class TrainerRole {
 public:
  virtual ~TrainerRole() = default;
  // Whether this trainer records the steps (metrics, summary) and takes the final checksum.
  virtual bool leader() const = 0;
  // Before each step: an order from outside, acted on (records may drop the replayed
  // steps); an error ends the run.
  virtual absl::StatusOr<LoopTurn> NextTurn(RunRecords& records) = 0;
  // Trains step `step`; sets `applied` (leader only) once the update is applied.
  virtual absl::Status TrainStep(int64_t step, std::optional<AppliedStep>* applied) = 0;
  // Step `step` is done on this trainer.
  virtual void StepDone(int64_t step) = 0;
  // Validation loss of the parameters of version `step`.
  virtual absl::StatusOr<double> Validate(int64_t step) = 0;
  // The leader after the last step: the whole model's checksum, the model saved into the workdir when
  // there is one (it may set the replica counts of `result`).
  virtual absl::StatusOr<std::string> FinalChecksum(RunResult* result) = 0;
  // After `failure` at step `step`: OK when a recovery order came (the loop goes on
  // with NextTurn), otherwise the error the run ends with.
  virtual absl::Status AwaitRecovery(int64_t step, const absl::Status& failure) = 0;
  // The processes the run used, for summary.json.
  virtual RunShape shape() const = 0;
};

// Trains from `first_step` to options.steps. The leader finishes `records` (summary.json);
// the others return the result without it. `live` (optional) gets each trained step's time
// and, on the leader, each recorded step.
absl::StatusOr<RunResult> RunTraining(const cluster::TrainerOptions& options, TrainerRole& role,
                                      RunRecords& records, int64_t first_step, TrainerMetrics* live = nullptr);

}  // namespace sy::trainer
