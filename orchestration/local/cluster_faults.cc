// Fault injection of a local cluster (--kill_host_at_step with --kill_hosts,
// --kill_trainer_at_step, --kill_coordinator_at_step, --stop_host_at_step,
// --stop_coordinator_at_step): SIGKILL or
// SIGSTOP at a step, once each; and the deaths the processes inflict on themselves at an
// exact point (--kill_host_while_streaming_at_step, --kill_host_in_live_move,
// --kill_coordinator_before_manifest_of_checkpoint), expected and survived (see cluster.h).
#include <signal.h>

#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "orchestration/local/cluster.h"

namespace sy::local {

absl::Status Cluster::InjectFaults() {
  if (absl::Status s = NoteSelfKills(); !s.ok()) return s;
  const int64_t step = progress_ ? progress_->last_step() : 0;
  auto due = [&](int64_t at, bool& done) {
    if (at == 0 || done || step < at) return false;
    done = true;
    return true;
  };
  const bool kill_hosts = due(o_.kill_host_at_step, host_killed_);
  const bool kill_coordinator = due(o_.kill_coordinator_at_step, coordinator_killed_);
  if (kill_hosts) {
    if (absl::Status s = HoldTrainersUntilAnyCheckpoint(); !s.ok()) return s;
    if (kill_coordinator) {  // together: its facts first, while it still answers
      if (absl::Status s = SaveCoordinatorFacts(); !s.ok()) return s;
    }
    for (int h = o_.hosts - o_.kill_hosts; h < o_.hosts; ++h) {
      KillNow(hosts_[h], "--kill_host_at_step", progress_->last_step());
    }
    HoldTrainers(false);
  }
  if (due(o_.kill_trainer_at_step, trainer_killed_)) {
    if (absl::Status s = WaitForAnyCheckpoint(); !s.ok()) return s;
    const size_t victim = o_.kill_trainer_index < 0 ? trainers_.size() - 1 : static_cast<size_t>(o_.kill_trainer_index);
    KillNow(trainers_[victim], "--kill_trainer_at_step", progress_->last_step());
    if (victim == 0) progress_->Follow(trainers_[1].log_path());  // trainer 1 leads from the rollback on
  }
  if (kill_coordinator) {
    if (!kill_hosts) {
      if (absl::Status s = SaveCoordinatorFacts(); !s.ok()) return s;
    }
    KillNow(coordinator_[0], "--kill_coordinator_at_step", step);
    return RestartCoordinator();
  }
  if (due(o_.stop_host_at_step, host_stopped_)) {
    if (absl::Status s = WaitForAnyCheckpoint(); !s.ok()) return s;
    return StopForAWhile(hosts_[o_.hosts - 1], "--stop_host_at_step", o_.stop_host_seconds);
  }
  if (due(o_.stop_coordinator_at_step, coordinator_stopped_)) {
    return StopForAWhile(coordinator_[0], "--stop_coordinator_at_step", o_.stop_coordinator_seconds);
  }
  return absl::OkStatus();
}

absl::Status Cluster::NoteSelfKills() {
  if (o_.kill_host_while_streaming_at_step > 0 && !host_killed_) {
    ChildProcess& host = hosts_[o_.hosts - 1];
    if (host.Poll() && host.KilledBy(SIGKILL)) {
      host_killed_ = true;
      killed_.insert(host.role());
      out_ << "\nsy-local: --kill_host_while_streaming_at_step: " << host.role()
           << " SIGKILLed itself while streaming the checkpoint at step " << o_.kill_host_while_streaming_at_step
           << std::endl;
    }
  }
  if (o_.kill_host_at_apply_of_step > 0 && !host_killed_) {
    ChildProcess& host = hosts_[o_.hosts - 1];
    if (host.Poll() && host.KilledBy(SIGKILL)) {
      host_killed_ = true;
      killed_.insert(host.role());
      out_ << "\nsy-local: --kill_host_at_apply_of_step: " << host.role() << " SIGKILLed itself at the apply of step "
           << o_.kill_host_at_apply_of_step << std::endl;
    }
  }
  if (!o_.kill_host_in_live_move.empty() && !host_killed_) {
    ChildProcess& host = hosts_[o_.kill_host_in_live_move == "source" ? o_.hosts - 1 : 0];
    if (host.Poll() && host.KilledBy(SIGKILL)) {
      host_killed_ = true;
      killed_.insert(host.role());
      out_ << "\nsy-local: --kill_host_in_live_move: " << host.role() << " SIGKILLed itself as the "
           << o_.kill_host_in_live_move << " of a live move" << std::endl;
    }
  }
  if (o_.kill_coordinator_before_manifest_of_checkpoint > 0 && !coordinator_killed_) {
    ChildProcess& coordinator = coordinator_[0];
    if (coordinator.Poll() && coordinator.KilledBy(SIGKILL)) {
      coordinator_killed_ = true;
      ++facts_before_restart_.recoveries;  // what it counted died with it; the restart is one recovery
      out_ << "\nsy-local: --kill_coordinator_before_manifest_of_checkpoint: the coordinator SIGKILLed itself "
           << "before the manifest of checkpoint " << o_.kill_coordinator_before_manifest_of_checkpoint << std::endl;
      return RestartCoordinator();
    }
  }
  return absl::OkStatus();
}

absl::Status Cluster::StopForAWhile(ChildProcess& c, const char* flag, double seconds) {
  out_ << "\nsy-local: " << flag << ": SIGSTOP " << c.role() << " (pid " << c.pid() << ") after step "
       << progress_->last_step() << " for " << seconds << " s at "
       << absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()) << std::endl;
  c.Signal(SIGSTOP);
  const Clock::time_point until = After(seconds);
  absl::Status status = absl::OkStatus();
  while (status.ok() && Clock::now() < until) {
    progress_->Pump();
    status = CheckStopAndDeadline();
    std::this_thread::sleep_for(kPollInterval);
  }
  c.Signal(SIGCONT);
  out_ << "\nsy-local: " << flag << ": SIGCONT " << c.role() << " after step " << progress_->last_step() << std::endl;
  return status;
}

absl::Status Cluster::SaveCoordinatorFacts() {
  absl::StatusOr<ClusterFacts> before = QueryClusterFacts(coordinator_endpoint_, absl::Seconds(10), admin_curve_);
  if (!before.ok()) {
    return Failed(coordinator_[0], absl::StrCat("did not answer before its kill: ", before.status().message()));
  }
  facts_before_restart_ = *before;
  ++facts_before_restart_.recoveries;  // the restart and the rebuild of its state
  return absl::OkStatus();
}

absl::Status Cluster::RestartCoordinator() {
  while (!coordinator_[0].Poll()) std::this_thread::sleep_for(kPollInterval);
  return StartCoordinator(coordinator_endpoint_);
}

void Cluster::KillNow(ChildProcess& c, const char* flag, int64_t step) {
  // The time (read before the signal, in the processes' log format) lets tests measure detection.
  out_ << "\nsy-local: " << flag << ": SIGKILL " << c.role() << " (pid " << c.pid() << ") after step " << step
       << " at " << absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()) << std::endl;
  killed_.insert(c.role());
  c.Signal(SIGKILL);
}

}  // namespace sy::local
