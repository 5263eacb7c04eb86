// The shared training loop (see training_loop.h).
#include "services/trainer/training_loop.h"

#include <chrono>
#include <utility>

namespace sy::trainer {
namespace {

bool IsEvalStep(int64_t step, const cluster::TrainerOptions& o) {
  return step == o.steps || (o.eval_every > 0 && step % o.eval_every == 0);
}

}  // namespace

absl::StatusOr<RunResult> RunTraining(const cluster::TrainerOptions& options, TrainerRole& role,
                                      RunRecords& records, int64_t first_step, TrainerMetrics* live) {
  int64_t step = first_step;
  // The leader's metrics of a step the parameters hold that are not recorded yet.
  std::optional<StepMetrics> unrecorded;
  std::string checksum;
  while (true) {
    absl::StatusOr<LoopTurn> turn = role.NextTurn(records);
    if (!turn.ok()) return turn.status();
    if (turn->kind == LoopTurn::kLeave) {
      records.result().steps = turn->step;
      return records.result();
    }
    if (turn->kind == LoopTurn::kReplay) {
      step = turn->step + 1;
      if (unrecorded && unrecorded->step != turn->step) unrecorded.reset();
      continue;
    }
    if (unrecorded) {
      StepMetrics& metrics = *unrecorded;
      if (IsEvalStep(metrics.step, options)) {
        absl::StatusOr<double> val = role.Validate(metrics.step);
        if (!val.ok()) {
          if (absl::Status waited = role.AwaitRecovery(metrics.step, val.status()); !waited.ok()) return waited;
          continue;
        }
        metrics.val_loss = *val;
      }
      if (absl::Status s = records.Record(metrics); !s.ok()) return s;
      if (live != nullptr) live->RecordStep(metrics);
      unrecorded.reset();
      continue;
    }
    if (step > options.steps) {
      if (!role.leader()) break;
      // A failure here (a host lost while the experts are pulled) still gets a recovery and a replay.
      absl::StatusOr<std::string> final_checksum = role.FinalChecksum(&records.result());
      if (final_checksum.ok()) {
        checksum = *std::move(final_checksum);
        break;
      }
      if (absl::Status waited = role.AwaitRecovery(options.steps, final_checksum.status()); !waited.ok()) {
        return waited;
      }
      continue;
    }
    const auto step_start = std::chrono::steady_clock::now();
    std::optional<AppliedStep> applied;
    const absl::Status trained = role.TrainStep(step, &applied);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    if (applied) {
      applied->metrics.tokens_per_s = applied->tokens / seconds;
      unrecorded = std::move(applied->metrics);
    }
    if (!trained.ok()) {
      if (absl::Status waited = role.AwaitRecovery(step, trained); !waited.ok()) return waited;
      continue;
    }
    if (live != nullptr) live->ObserveStepSeconds(seconds);
    role.StepDone(step);
    ++step;  // the leader records the step (unrecorded) first
  }
  if (!role.leader()) {
    records.result().steps = options.steps;
    return records.result();
  }
  return records.Finish(checksum, role.shape());
}

}  // namespace sy::trainer
