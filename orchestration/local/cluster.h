// The local cluster of one sy-local run (see local_cluster.h, RunLocalCluster): the
// processes it started and what it did to them. Its member functions are split by
// concern: local_cluster.cc (the run, waiting for the trainers, stopping),
// cluster_start.cc (the workdir and process startup), cluster_checkpoints.cc
// (restore and waiting for checkpoints), cluster_faults.cc (--kill_*_at_step),
// cluster_hosts.cc (--add_host_at_step / --drain_host_at_step) and cluster_report.cc
// (summary.json and the report). Not thread-safe: driven by the calling thread; `stop`
// may be set from a signal handler.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "orchestration/local/child_process.h"
#include "orchestration/local/coordinator_control.h"
#include "orchestration/local/launcher_options.h"
#include "orchestration/local/progress_echo.h"

namespace sy::local {

using Clock = std::chrono::steady_clock;
inline constexpr auto kPollInterval = std::chrono::milliseconds(20);

// `seconds` from now.
Clock::time_point After(double seconds);

class Cluster {
 public:
  Cluster(const LauncherOptions& o, std::ostream& out, const std::atomic<bool>& stop);
  ~Cluster();  // StopAll

  absl::Status Run();

 private:
  // ---- local_cluster.cc ----
  absl::Status WaitForTrainers();
  absl::Status StopHosts();
  absl::Status CheckStopAndDeadline();
  // Stops every process, then describes `culprit`'s failure with its log tail.
  absl::Status Failed(const ChildProcess& culprit, const std::string& what,
                      absl::StatusCode code = absl::StatusCode::kAborted);
  // Stops the coordinator, then the trainers and hosts (StopAndWait each).
  void StopAll();
  // SIGTERM to each of `processes` still running; SIGKILL after the grace period.
  void StopAndWait(const std::vector<ChildProcess*>& processes);

  // ---- cluster_start.cc ----
  absl::Status PrepareWorkdir();
  std::string Path(const std::string& name) const { return absl::StrCat(o_.workdir, "/", name); }
  std::string ReadyFile(int host) const { return Path(absl::StrCat("host-", host, ".ready")); }
  absl::Status Start(const std::string& role, const std::vector<std::string>& argv, std::vector<ChildProcess>* into);
  // Writes the run's cluster key directory (KeysDir) and loads sy-local's operator keys,
  // unless --insecure or standalone.
  absl::Status MakeKeys();
  absl::Status StartStandalone(int threads);
  // Starts sy-coordinator (again, on `endpoint` and appending to its log, after a
  // kill) and waits for its ready file.
  absl::Status StartCoordinator(const std::string& endpoint = "");
  absl::Status StartDistributed(int threads);
  // The endpoint in a ready file, once the file exists and ends with a newline.
  static std::optional<std::string> ReadEndpoint(const std::string& path);
  absl::StatusOr<std::vector<std::string>> WaitForReadyFiles();

  // ---- cluster_checkpoints.cc ----
  // --restore_from: restores checkpoint --restore_checkpoint into the hosts; returns its step.
  absl::StatusOr<int64_t> RestoreFromCheckpoint();
  // The trainers are done; the hosts keep serving until the coordinator has the last
  // automatic checkpoint of the run (hosts that ran ahead leave it to be taken now).
  absl::Status WaitForLastCheckpoint();
  // Actors move through the latest checkpoint: waits until the coordinator has one.
  absl::Status WaitForAnyCheckpoint();
  // Returns with the trainers held (HoldTrainers) and a checkpoint committed, for a fault
  // that must land inside the run (a short run on a loaded machine could end while
  // sy-local waits): held at most kMaxTrainerHold while only the hosts' streams are due.
  absl::Status HoldTrainersUntilAnyCheckpoint();

  // ---- cluster_faults.cc ----
  // --kill_*_at_step: SIGKILL once trainer 0's progress reached the step (once each).
  // A host or trainer is killed only once a checkpoint is committed: recovery replays
  // from one, and on a loaded machine the first may still be streaming at step K.
  // --kill_hosts kills the last N hosts together; a host and the coordinator due at the
  // same step die back to back. --stop_host_at_step holds the last host stopped for
  // --stop_host_seconds (sy-local echoes progress meanwhile), then continues it;
  // --stop_coordinator_at_step the same for the coordinator.
  absl::Status InjectFaults();
  // Processes that SIGKILLed themselves on purpose (--kill_host_while_streaming_at_step,
  // --kill_coordinator_before_manifest_of_checkpoint): noted; the coordinator is restarted.
  absl::Status NoteSelfKills();
  // SIGSTOP `c`, SIGCONT it `seconds` later (`flag` names the fault in the output).
  absl::Status StopForAWhile(ChildProcess& c, const char* flag, double seconds);
  // Keeps what the coordinator counted so far for summary.json (it dies with it).
  absl::Status SaveCoordinatorFacts();
  // Waits for the dead coordinator and starts it again on the same database and endpoint.
  absl::Status RestartCoordinator();
  void KillNow(ChildProcess& c, const char* flag, int64_t step);
  bool Killed(const ChildProcess& c) const { return killed_.count(c.role()) > 0; }

  // ---- cluster_hosts.cc ----
  // --add_host_at_step / --drain_host_at_step: once trainer 0's progress reached the step (once each).
  absl::Status ChangeHosts();
  // SIGSTOP (hold) or SIGCONT (release) the running trainers. A host join or drain
  // holds them while the coordinator takes the change in, so it lands inside the run
  // on however fast a machine (a 40-step run can end before a new host registers). A
  // join's hold ends after kMaxTrainerHold at the latest, a drain's with its admin call:
  // inside the coordinator's default heartbeat timeout (3 s), so no trainer is failed.
  static constexpr double kMaxTrainerHold = 1.5;
  void HoldTrainers(bool hold);
  void ReleaseTrainersIfHeldTooLong();
  // Starts host --hosts (registering with the coordinator, which moves actors to it) and waits for its ready file
  // and its registration; the trainers are held meanwhile.
  absl::Status AddHost(int64_t step);
  // Drains the last host of --hosts through the admin API (as `syctl drain`),
  // waits until its actors are restored elsewhere, then stops it (it must exit 0).
  absl::Status DrainHost(int64_t step);

  // ---- cluster_report.cc ----
  // summary.json gains what the coordinator saw (`facts`, plus what a killed coordinator
  // had counted): recoveries, checkpoints, moves and the host load balance over the first
  // and last 10 steps; and each host process's CPU time (the hosts' work, replays included).
  absl::Status AddFacts(ClusterFacts facts);
  absl::Status Report();

  const LauncherOptions& o_;
  std::ostream& out_;
  const std::atomic<bool>& stop_;
  const std::string bin_dir_;
  const std::optional<Clock::time_point> deadline_;
  std::vector<ChildProcess> coordinator_;  // empty or one
  std::string coordinator_endpoint_;       // "" without a coordinator
  std::vector<ChildProcess> hosts_;
  std::vector<ChildProcess> trainers_;
  std::optional<Clock::time_point> trainers_held_;  // until when, while held by HoldTrainers
  std::optional<ProgressEcho> progress_;
  std::set<std::string> killed_;  // roles SIGKILLed on purpose (--kill_*_at_step)
  bool host_killed_ = false, trainer_killed_ = false, coordinator_killed_ = false, host_stopped_ = false,
       coordinator_stopped_ = false;
  bool host_added_ = false, host_drained_ = false;
  std::set<std::string> drained_;  // roles drained and stopped on purpose (--drain_host_at_step)
  int threads_ = 1;                // compute threads of each process
  ClusterFacts facts_before_restart_;  // counts of a coordinator killed and restarted
  transport::CurveKeys admin_curve_;   // sy-local's operator keys for admin calls (empty: --insecure)
};

}  // namespace sy::local
