// The run of a local cluster: start, wait for the trainers (injecting faults and
// changing hosts on the way), stop, report (see local_cluster.h and cluster.h).
#include "orchestration/local/local_cluster.h"

#include <signal.h>

#include <filesystem>
#include <iostream>
#include <thread>
#include <utility>

#include "orchestration/local/cluster.h"
#include "orchestration/local/core_split.h"

namespace sy::local {
namespace {

constexpr int kTailLines = 15;

std::string SelfDirectory() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

}  // namespace

Clock::time_point After(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

Cluster::Cluster(const LauncherOptions& o, std::ostream& out, const std::atomic<bool>& stop)
    : o_(o), out_(out), stop_(stop), bin_dir_(o.bin_dir.empty() ? SelfDirectory() : o.bin_dir),
      deadline_(o.timeout_s > 0 ? std::optional<Clock::time_point>(After(o.timeout_s)) : std::nullopt) {}

Cluster::~Cluster() { StopAll(); }

absl::Status Cluster::Run() {
  if (absl::Status s = PrepareWorkdir(); !s.ok()) return s;
  const int processes = o_.hosts == 0 ? 1 : o_.hosts + o_.trainers;
  const int cores = AvailableCores();
  const int threads = o_.threads > 0 ? o_.threads : ThreadsPerProcess(cores, processes);
  threads_ = threads;
  out_ << "sy-local: " << (o_.hosts == 0 ? std::string("1 standalone trainer")
                                        : absl::StrCat(o_.hosts, " expert hosts + ", o_.trainers, " trainers"))
       << ", " << threads << " compute thread(s) each on " << cores << " core(s); logs: " << o_.workdir
       << "/<role>-<i>.log" << std::endl;
  absl::Status s = o_.hosts == 0 ? StartStandalone(threads) : StartDistributed(threads);
  if (s.ok()) s = WaitForTrainers();
  std::optional<ClusterFacts> facts;
  if (s.ok() && !coordinator_endpoint_.empty()) s = WaitForLastCheckpoint();
  if (s.ok() && !coordinator_endpoint_.empty()) {
    // Training is over: a query the coordinator does not answer costs only its facts.
    facts = GatherClusterFacts(coordinator_endpoint_, absl::Seconds(10), admin_curve_);
    AddCheckpointSteps(coordinator_endpoint_, absl::Seconds(10), admin_curve_, &*facts);
    for (const MissingFact& m : facts->missing) {
      std::cerr << "sy-local: warning: the coordinator's " << m.query << " query failed (" << m.error
                << "): summary.json lacks its facts (see \"missing\" there)" << std::endl;
    }
  }
  if (s.ok()) s = StopHosts();
  progress_.reset();
  if (!s.ok()) return s;
  if (facts) {
    if (absl::Status added = AddFacts(*std::move(facts)); !added.ok()) return added;
  }
  return Report();
}

absl::Status Cluster::WaitForTrainers() {
  while (true) {
    if (progress_) progress_->Pump();
    if (absl::Status s = InjectFaults(); !s.ok()) return s;
    if (absl::Status s = ChangeHosts(); !s.ok()) return s;
    bool all_done = true;
    for (ChildProcess& t : trainers_) {
      if (!t.Poll()) {
        all_done = false;
      } else if (!t.Succeeded() && !Killed(t)) {
        return Failed(t, "failed");
      }
    }
    if (all_done) return absl::OkStatus();
    for (ChildProcess& h : hosts_) {
      if (h.Poll() && !Killed(h) && !drained_.count(h.role())) {
        return Failed(h, "exited while the trainers were running");
      }
    }
    for (ChildProcess& c : coordinator_) {
      if (c.Poll()) return Failed(c, "exited while the trainers were running");
    }
    if (absl::Status s = CheckStopAndDeadline(); !s.ok()) return s;
    std::this_thread::sleep_for(kPollInterval);
  }
}

absl::Status Cluster::StopHosts() {
  if (progress_) progress_->Finish();
  StopAll();
  for (const ChildProcess& h : hosts_) {
    if (!h.Succeeded() && !Killed(h)) return Failed(h, "did not stop cleanly on SIGTERM");
  }
  for (const ChildProcess& c : coordinator_) {
    if (!c.Succeeded()) return Failed(c, "did not stop cleanly on SIGTERM");
  }
  return absl::OkStatus();
}

absl::Status Cluster::CheckStopAndDeadline() {
  if (stop_.load()) {
    StopAll();
    return absl::CancelledError("interrupted: every process was stopped");
  }
  if (deadline_ && Clock::now() > *deadline_) {
    StopAll();
    return absl::DeadlineExceededError(
        absl::StrCat("the run took longer than --timeout_s=", o_.timeout_s, ": every process was stopped"));
  }
  return absl::OkStatus();
}

absl::Status Cluster::Failed(const ChildProcess& culprit, const std::string& what, absl::StatusCode code) {
  if (progress_) progress_->Finish();
  StopAll();
  return absl::Status(code, absl::StrCat(culprit.role(), " (pid ", culprit.pid(), ") ", what, ": ",
                                         culprit.ExitDescription(), "; last lines of ", culprit.log_path(),
                                         ":\n", TailOfFile(culprit.log_path(), kTailLines)));
}

void Cluster::StopAll() {
  HoldTrainers(false);  // a stopped process would not act on SIGTERM
  // The coordinator first: hosts that went away before it would look failed to it, and
  // a clean end would log a recovery.
  std::vector<ChildProcess*> coordinator, rest;
  for (ChildProcess& c : coordinator_) coordinator.push_back(&c);
  for (ChildProcess& t : trainers_) rest.push_back(&t);
  for (ChildProcess& h : hosts_) rest.push_back(&h);
  StopAndWait(coordinator);
  StopAndWait(rest);
}

void Cluster::StopAndWait(const std::vector<ChildProcess*>& processes) {
  for (ChildProcess* c : processes) {
    if (!c->Poll()) c->Signal(SIGTERM);
  }
  const Clock::time_point kill_at = After(o_.grace_s);
  while (true) {
    bool running = false;
    for (ChildProcess* c : processes) running = running || !c->Poll();
    if (!running) return;
    if (Clock::now() > kill_at) {
      for (ChildProcess* c : processes) c->Signal(SIGKILL);
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

absl::Status RunLocalCluster(const LauncherOptions& o, std::ostream& out, const std::atomic<bool>& stop) {
  Cluster cluster(o, out, stop);
  return cluster.Run();
}

}  // namespace sy::local
