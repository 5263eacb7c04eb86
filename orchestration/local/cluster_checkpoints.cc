// A local cluster and its coordinator's checkpoints: restoring one at the start
// (--restore_from), waiting for one before actors move, and for the run's last (see cluster.h).
#include <algorithm>

#include "orchestration/local/cluster.h"

namespace sy::local {

absl::StatusOr<int64_t> Cluster::RestoreFromCheckpoint() {
  absl::StatusOr<RestoredCheckpoint> restored = RestoreCheckpoint(
      coordinator_endpoint_, static_cast<uint64_t>(o_.restore_checkpoint), absl::Seconds(o_.ready_timeout_s),
      admin_curve_);
  if (!restored.ok()) {
    StopAll();
    return absl::FailedPreconditionError(absl::StrCat("restore: ", restored.status().message()));
  }
  const int64_t step = static_cast<int64_t>(restored->step);
  out_ << "sy-local: restored checkpoint " << restored->id << " (after step " << restored->step << ")" << std::endl;
  if (step >= o_.steps) {
    StopAll();
    return absl::FailedPreconditionError(absl::StrCat("checkpoint ", restored->id, " is at step ", step,
                                                      ": nothing left of --steps=", o_.steps));
  }
  return step;
}

absl::Status Cluster::WaitForLastCheckpoint() {
  if (o_.checkpoint_every <= 0 || o_.steps < o_.checkpoint_every) return absl::OkStatus();
  const uint64_t last = static_cast<uint64_t>(o_.steps / o_.checkpoint_every * o_.checkpoint_every);
  out_ << "sy-local: waiting for the checkpoint at step " << last << std::endl;
  absl::Duration wait = absl::Seconds(120);
  if (deadline_) {  // --timeout_s bounds the whole run, this wait too
    wait = std::min(wait, std::max(absl::ZeroDuration(), absl::FromChrono(*deadline_ - Clock::now())));
  }
  absl::Status s = WaitForCheckpointAtStep(coordinator_endpoint_, last, wait, admin_curve_);
  if (s.code() == absl::StatusCode::kNotFound) {
    out_ << "sy-local: warning: " << s.message() << "; see " << Path("coordinator.log") << std::endl;
    return absl::OkStatus();  // the weights are whole; only that checkpoint is missing
  }
  if (!s.ok()) {
    StopAll();
    return absl::Status(s.code(), absl::StrCat("the run's last checkpoint: ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status Cluster::HoldTrainersUntilAnyCheckpoint() {
  HoldTrainers(true);
  // The trainers passed the first boundary, so only the hosts' streams can be missing:
  // held that long at most, inside the coordinator's heartbeat timeout.
  if (o_.checkpoint_every > 0 && progress_ && progress_->last_step() >= o_.checkpoint_every &&
      WaitForCheckpointAtStep(coordinator_endpoint_, static_cast<uint64_t>(o_.checkpoint_every),
                              absl::Seconds(kMaxTrainerHold), admin_curve_)
          .ok()) {
    return absl::OkStatus();
  }
  HoldTrainers(false);  // not there yet: the run goes on while it comes
  if (absl::Status s = WaitForAnyCheckpoint(); !s.ok()) return s;
  HoldTrainers(true);
  return absl::OkStatus();
}

absl::Status Cluster::WaitForAnyCheckpoint() {
  absl::Status s;
  // NotFound: that boundary was given up for a later one, which is coming.
  for (int64_t at = o_.checkpoint_every; at <= o_.steps; at += o_.checkpoint_every) {
    s = WaitForCheckpointAtStep(coordinator_endpoint_, static_cast<uint64_t>(at), absl::Seconds(60), admin_curve_);
    if (s.code() != absl::StatusCode::kNotFound) break;
  }
  if (!s.ok()) return Failed(coordinator_[0], absl::StrCat("has no checkpoint to move actors through: ", s.message()));
  return absl::OkStatus();
}

}  // namespace sy::local
