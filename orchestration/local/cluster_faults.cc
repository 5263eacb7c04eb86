// Fault injection of a local cluster (--kill_host_at_step, --kill_trainer_at_step,
// --kill_coordinator_at_step): SIGKILL at a step, once each (see cluster.h).
#include <signal.h>

#include <thread>

#include "orchestration/local/cluster.h"

namespace sy::local {

absl::Status Cluster::InjectFaults() {
  const int64_t step = progress_ ? progress_->last_step() : 0;
  auto due = [&](int64_t at, bool& done) {
    if (at == 0 || done || step < at) return false;
    done = true;
    return true;
  };
  if (due(o_.kill_host_at_step, host_killed_)) {
    if (absl::Status s = WaitForAnyCheckpoint(); !s.ok()) return s;
    KillNow(hosts_.back(), "--kill_host_at_step", progress_->last_step());
  }
  if (due(o_.kill_trainer_at_step, trainer_killed_)) {
    if (absl::Status s = WaitForAnyCheckpoint(); !s.ok()) return s;
    const size_t victim = o_.kill_trainer_index < 0 ? trainers_.size() - 1 : static_cast<size_t>(o_.kill_trainer_index);
    KillNow(trainers_[victim], "--kill_trainer_at_step", progress_->last_step());
    if (victim == 0) progress_->Follow(trainers_[1].log_path());  // trainer 1 leads from the rollback on
  }
  if (due(o_.kill_coordinator_at_step, coordinator_killed_)) {
    // What the coordinator counted so far would die with it: keep it for summary.json.
    absl::StatusOr<ClusterFacts> before = QueryClusterFacts(coordinator_endpoint_, absl::Seconds(10), admin_curve_);
    if (!before.ok()) {
      return Failed(coordinator_[0], absl::StrCat("did not answer before its kill: ", before.status().message()));
    }
    facts_before_restart_ = *before;
    ++facts_before_restart_.recoveries;  // the restart and the rebuild of its state
    KillNow(coordinator_[0], "--kill_coordinator_at_step", step);
    while (!coordinator_[0].Poll()) std::this_thread::sleep_for(kPollInterval);
    return StartCoordinator(coordinator_endpoint_);
  }
  return absl::OkStatus();
}

void Cluster::KillNow(ChildProcess& c, const char* flag, int64_t step) {
  out_ << "\nsy-local: " << flag << ": SIGKILL " << c.role() << " (pid " << c.pid() << ") after step " << step
       << std::endl;
  killed_.insert(c.role());
  c.Signal(SIGKILL);
}

}  // namespace sy::local
