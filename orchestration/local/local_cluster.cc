// Process orchestration of the local cluster (see local_cluster.h).
#include "orchestration/local/local_cluster.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "orchestration/local/child_process.h"
#include "orchestration/local/coordinator_control.h"
#include "orchestration/local/core_split.h"
#include "orchestration/local/run_report.h"
#include "proto/admin.capnp.h"
#include "services/cluster/coordinator_link.h"
#include "services/cluster/model_options.h"
#include "services/cluster/options.h"
#include "services/cluster/placement.h"
#include "services/syctl/admin_client.h"

namespace sy::local {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPollInterval = std::chrono::milliseconds(20);
constexpr int kTailLines = 15;

std::string SelfDirectory() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

Clock::time_point After(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// Copies the leader's progress lines ("step 12/300 | ...") from its log to `out`
// as the log grows: one updating line on a terminal, one line per step otherwise.
// The leader is trainer 0 until it dies; then the next in line (Follow).
class ProgressEcho {
 public:
  ProgressEcho(std::string log_path, std::ostream& out)
      : log_path_(std::move(log_path)), out_(out), terminal_(&out == &std::cout && isatty(1)) {}

  void Pump() {
    std::ifstream in(log_path_, std::ios::binary);
    if (!in) return;
    in.seekg(offset_);
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // an unfinished line: read it again next time
      offset_ += line.size() + 1;
      if (!absl::StartsWith(line, "step ")) continue;
      const std::string number = line.substr(5, line.find('/') - 5);
      if (int64_t step; absl::SimpleAtoi(number, &step)) last_step_ = step;
      if (terminal_) {
        out_ << "\r" << line << "\033[K" << std::flush;
        open_line_ = true;
      } else {
        out_ << line << "\n" << std::flush;
      }
    }
  }

  // The step of the newest progress line (0 before any; lower again after a rollback).
  int64_t last_step() const { return last_step_; }

  // Echoes another trainer's log from its start (it prints progress once it leads).
  void Follow(std::string log_path) {
    Pump();
    log_path_ = std::move(log_path);
    offset_ = 0;
  }

  void Finish() {
    Pump();
    if (open_line_) out_ << "\n";
    open_line_ = false;
  }

 private:
  std::string log_path_;
  std::ostream& out_;
  bool terminal_;
  std::streamoff offset_ = 0;
  bool open_line_ = false;
  int64_t last_step_ = 0;
};

class Cluster {
 public:
  Cluster(const LauncherOptions& o, std::ostream& out, const std::atomic<bool>& stop)
      : o_(o), out_(out), stop_(stop), bin_dir_(o.bin_dir.empty() ? SelfDirectory() : o.bin_dir),
        deadline_(o.timeout_s > 0 ? std::optional<Clock::time_point>(After(o.timeout_s)) : std::nullopt) {}

  ~Cluster() { StopAll(); }

  absl::Status Run() {
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
      facts = GatherClusterFacts(coordinator_endpoint_, absl::Seconds(10));
      for (const MissingFact& m : facts->missing) {
        std::cerr << "sy-local: warning: the coordinator's " << m.query << " query failed (" << m.error
                  << "): summary.json lacks its facts (see \"missing\" there)" << std::endl;
      }
    }
    if (s.ok()) s = StopHosts();
    progress_.reset();
    if (!s.ok()) return s;
    if (facts) {
      facts->recoveries += facts_before_restart_.recoveries;
      facts->checkpoints += facts_before_restart_.checkpoints;
      facts->migrations += facts_before_restart_.migrations;
      facts->replications += facts_before_restart_.replications;
      // Steps only the killed coordinator counted (the restarted one counts from its start).
      facts->step_host_tokens.insert(facts_before_restart_.step_host_tokens.begin(),
                                     facts_before_restart_.step_host_tokens.end());
      if (absl::Status added = AddFacts(*facts); !added.ok()) return added;
    }
    return Report();
  }

 private:
  absl::Status PrepareWorkdir() {
    std::error_code ec;
    std::filesystem::create_directories(o_.workdir, ec);
    if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot create --workdir ", o_.workdir, ": ", ec.message()));
    // A stale record of an earlier run must not pass for this run's.
    for (const char* name : {"metrics.jsonl", "summary.json"}) std::filesystem::remove(Path(name), ec);
    for (int h = 0; h <= o_.hosts; ++h) std::filesystem::remove(ReadyFile(h), ec);  // and a joining host's
    std::filesystem::remove(Path("coordinator.ready"), ec);
    if (o_.restore_from.empty()) {
      // A fresh run starts from an empty catalog (an old placement must not come back).
      std::filesystem::remove_all(Path("coordinator.db"), ec);
      return absl::OkStatus();
    }
    absl::StatusOr<std::string> db = CheckpointDatabaseOf(o_.restore_from);
    if (!db.ok()) return absl::FailedPreconditionError(db.status().message());
    if (std::filesystem::equivalent(*db, Path("coordinator.db"), ec)) return absl::OkStatus();
    return CopyDatabase(*db, Path("coordinator.db"));
  }

  // The trainers are done; the hosts keep serving until the coordinator has the last
  // automatic checkpoint of the run (hosts that ran ahead leave it to be taken now).
  absl::Status WaitForLastCheckpoint() {
    if (o_.checkpoint_every <= 0 || o_.steps < o_.checkpoint_every) return absl::OkStatus();
    const uint64_t last = static_cast<uint64_t>(o_.steps / o_.checkpoint_every * o_.checkpoint_every);
    out_ << "sy-local: waiting for the checkpoint at step " << last << std::endl;
    absl::Status s = WaitForCheckpointAtStep(coordinator_endpoint_, last, absl::Seconds(120));
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

  std::string Path(const std::string& name) const { return absl::StrCat(o_.workdir, "/", name); }
  std::string ReadyFile(int host) const { return Path(absl::StrCat("host-", host, ".ready")); }

  absl::Status Start(const std::string& role, const std::vector<std::string>& argv, std::vector<ChildProcess>* into) {
    absl::StatusOr<ChildProcess> child = ChildProcess::Start(role, argv, Path(role + ".log"));
    if (!child.ok()) {
      StopAll();
      return child.status();
    }
    into->push_back(*std::move(child));
    return absl::OkStatus();
  }

  absl::Status StartStandalone(int threads) {
    if (absl::Status s = Start("trainer-0", StandaloneCommand(o_, bin_dir_, threads), &trainers_); !s.ok()) return s;
    progress_.emplace(trainers_[0].log_path(), out_);
    return absl::OkStatus();
  }

  // Starts sy-coordinator (again, on `endpoint` and appending to its log, after a
  // kill) and waits for its ready file.
  absl::Status StartCoordinator(const std::string& endpoint = "") {
    absl::StatusOr<std::vector<std::string>> argv = CoordinatorCommand(o_, bin_dir_);
    if (!argv.ok()) return argv.status();
    const bool restart = !endpoint.empty();
    if (restart) {
      for (std::string& arg : *argv) {
        if (absl::StartsWith(arg, "--listen=")) arg = "--listen=" + endpoint;
      }
      std::error_code ec;
      std::filesystem::remove(Path("coordinator.ready"), ec);
      coordinator_.clear();
    }
    absl::StatusOr<ChildProcess> child = ChildProcess::Start("coordinator", *argv, Path("coordinator.log"), restart);
    if (!child.ok()) {
      StopAll();
      return child.status();
    }
    coordinator_.push_back(*std::move(child));
    const Clock::time_point ready_deadline = After(o_.ready_timeout_s);
    while (true) {
      if (std::optional<std::string> ep = ReadEndpoint(Path("coordinator.ready"))) {
        coordinator_endpoint_ = *ep;
        out_ << "sy-local: coordinator " << (restart ? "restarted" : "ready") << " at " << *ep << std::endl;
        return absl::OkStatus();
      }
      if (coordinator_[0].Poll()) return Failed(coordinator_[0], "exited before writing its ready file");
      if (absl::Status s = CheckStopAndDeadline(); !s.ok()) return s;
      if (Clock::now() > ready_deadline) {
        return Failed(coordinator_[0], absl::StrCat("did not write its ready file within ", o_.ready_timeout_s, " s"),
                      absl::StatusCode::kDeadlineExceeded);
      }
      std::this_thread::sleep_for(kPollInterval);
    }
  }

  absl::Status StartDistributed(int threads) {
    if (o_.coordinator) {
      if (absl::Status s = StartCoordinator(); !s.ok()) return s;
    }
    for (int h = 0; h < o_.hosts; ++h) {
      if (absl::Status s = Start(absl::StrCat("host-", h), HostCommand(o_, bin_dir_, h, threads, coordinator_endpoint_),
                                 &hosts_);
          !s.ok()) {
        return s;
      }
    }
    absl::StatusOr<std::vector<std::string>> endpoints = WaitForReadyFiles();
    if (!endpoints.ok()) return endpoints.status();
    out_ << "sy-local: hosts ready at " << absl::StrJoin(*endpoints, ",") << std::endl;
    int64_t resume_step = 0;
    if (!o_.restore_from.empty()) {
      absl::StatusOr<RestoredCheckpoint> restored = RestoreCheckpoint(
          coordinator_endpoint_, static_cast<uint64_t>(o_.restore_checkpoint), absl::Seconds(o_.ready_timeout_s));
      if (!restored.ok()) {
        StopAll();
        return absl::FailedPreconditionError(absl::StrCat("restore: ", restored.status().message()));
      }
      resume_step = static_cast<int64_t>(restored->step);
      out_ << "sy-local: restored checkpoint " << restored->id << " (after step " << restored->step << ")"
           << std::endl;
      if (resume_step >= o_.steps) {
        StopAll();
        return absl::FailedPreconditionError(absl::StrCat("checkpoint ", restored->id, " is at step ", resume_step,
                                                          ": nothing left of --steps=", o_.steps));
      }
    }
    for (int t = 0; t < o_.trainers; ++t) {
      std::vector<std::string> argv = TrainerCommand(o_, bin_dir_, t, *endpoints, threads, coordinator_endpoint_);
      if (resume_step > 0) argv.push_back(absl::StrCat("--resume_step=", resume_step));
      if (absl::Status s = Start(absl::StrCat("trainer-", t), argv, &trainers_); !s.ok()) return s;
    }
    progress_.emplace(trainers_[0].log_path(), out_);
    return absl::OkStatus();
  }

  // The endpoint in a ready file, once the file exists and ends with a newline.
  static std::optional<std::string> ReadEndpoint(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    if (text.empty() || text.back() != '\n') return std::nullopt;
    return std::string(absl::StripAsciiWhitespace(text));
  }

  absl::StatusOr<std::vector<std::string>> WaitForReadyFiles() {
    const Clock::time_point ready_deadline = After(o_.ready_timeout_s);
    std::vector<std::optional<std::string>> endpoints(o_.hosts);
    while (true) {
      bool all = true;
      for (int h = 0; h < o_.hosts; ++h) {
        if (!endpoints[h]) endpoints[h] = ReadEndpoint(ReadyFile(h));
        all = all && endpoints[h].has_value();
        if (hosts_[h].Poll()) return Failed(hosts_[h], "exited before writing its ready file");
      }
      if (all) break;
      if (absl::Status s = CheckStopAndDeadline(); !s.ok()) return s;
      if (Clock::now() > ready_deadline) {
        for (int h = 0; h < o_.hosts; ++h) {
          if (!endpoints[h]) {
            return Failed(hosts_[h], absl::StrCat("did not write its ready file ", ReadyFile(h), " within ",
                                                  o_.ready_timeout_s, " s"),
                          absl::StatusCode::kDeadlineExceeded);
          }
        }
      }
      std::this_thread::sleep_for(kPollInterval);
    }
    std::vector<std::string> out;
    for (const auto& e : endpoints) out.push_back(*e);
    return out;
  }

  absl::Status WaitForTrainers() {
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

  absl::Status StopHosts() {
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

  bool Killed(const ChildProcess& c) const { return killed_.count(c.role()) > 0; }

  // --kill_*_at_step: SIGKILL once trainer 0's progress reached the step (once each).
  // A host or trainer is killed only once a checkpoint is committed: recovery replays
  // from one, and on a loaded machine the first may still be streaming at step K.
  absl::Status InjectFaults() {
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
      absl::StatusOr<ClusterFacts> before = QueryClusterFacts(coordinator_endpoint_, absl::Seconds(10));
      if (!before.ok()) return Failed(coordinator_[0], absl::StrCat("did not answer before its kill: ", before.status().message()));
      facts_before_restart_ = *before;
      ++facts_before_restart_.recoveries;  // the restart and the rebuild of its state
      KillNow(coordinator_[0], "--kill_coordinator_at_step", step);
      while (!coordinator_[0].Poll()) std::this_thread::sleep_for(kPollInterval);
      return StartCoordinator(coordinator_endpoint_);
    }
    return absl::OkStatus();
  }

  // --add_host_at_step / --drain_host_at_step: once trainer 0's progress reached the step (once each).
  absl::Status ChangeHosts() {
    const int64_t step = progress_ ? progress_->last_step() : 0;
    if (o_.add_host_at_step > 0 && !host_added_ && step >= o_.add_host_at_step) {
      host_added_ = true;
      if (absl::Status s = AddHost(step); !s.ok()) return s;
    }
    if (o_.drain_host_at_step > 0 && !host_drained_ && step >= o_.drain_host_at_step) {
      host_drained_ = true;
      if (absl::Status s = DrainHost(step); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // Actors move through the latest checkpoint: waits until the coordinator has one.
  absl::Status WaitForAnyCheckpoint() {
    absl::Status s;
    // NotFound: that boundary was given up for a later one, which is coming.
    for (int64_t at = o_.checkpoint_every; at <= o_.steps; at += o_.checkpoint_every) {
      s = WaitForCheckpointAtStep(coordinator_endpoint_, static_cast<uint64_t>(at), absl::Seconds(60));
      if (s.code() != absl::StatusCode::kNotFound) break;
    }
    if (!s.ok()) return Failed(coordinator_[0], absl::StrCat("has no checkpoint to move actors through: ", s.message()));
    return absl::OkStatus();
  }

  // SIGSTOP (hold) or SIGCONT (release) the running trainers. A host join or drain
  // holds them while the coordinator takes the change in, so it lands inside the run
  // on however fast a machine (a 40-step run can end before a new host registers). A
  // join's hold ends after kMaxTrainerHold at the latest, a drain's with its admin call:
  // inside the coordinator's default heartbeat timeout (3 s), so no trainer is failed.
  static constexpr double kMaxTrainerHold = 1.5;
  void HoldTrainers(bool hold) {
    if (hold == trainers_held_.has_value()) return;
    for (ChildProcess& t : trainers_) {
      if (!t.Poll()) t.Signal(hold ? SIGSTOP : SIGCONT);
    }
    trainers_held_ = hold ? std::optional<Clock::time_point>(After(kMaxTrainerHold)) : std::nullopt;
  }
  void ReleaseTrainersIfHeldTooLong() {
    if (trainers_held_ && Clock::now() > *trainers_held_) HoldTrainers(false);
  }

  // Starts host --hosts (registering with the coordinator, which moves actors to it) and waits for its ready file
  // and its registration; the trainers are held meanwhile.
  absl::Status AddHost(int64_t step) {
    if (absl::Status s = WaitForAnyCheckpoint(); !s.ok()) return s;
    const int index = static_cast<int>(hosts_.size());
    const std::string role = absl::StrCat("host-", index);
    out_ << "\nsy-local: --add_host_at_step: starting " << role << " after step " << step << std::endl;
    HoldTrainers(true);
    if (absl::Status s = Start(role, HostCommand(o_, bin_dir_, index, threads_, coordinator_endpoint_), &hosts_);
        !s.ok()) {
      return s;
    }
    const Clock::time_point ready_deadline = After(o_.ready_timeout_s);
    while (true) {
      ReleaseTrainersIfHeldTooLong();
      if (std::optional<std::string> ep = ReadEndpoint(ReadyFile(index))) {
        out_ << "sy-local: " << role << " ready at " << *ep << std::endl;
        // Registered by now (a host registers before it writes the file); the coordinator
        // started moving actors to it in the same turn.
        HoldTrainers(false);
        return absl::OkStatus();
      }
      if (hosts_.back().Poll()) return Failed(hosts_.back(), "exited before writing its ready file");
      if (absl::Status s = CheckStopAndDeadline(); !s.ok()) return s;
      if (Clock::now() > ready_deadline) {
        return Failed(hosts_.back(), absl::StrCat("did not write its ready file within ", o_.ready_timeout_s, " s"),
                      absl::StatusCode::kDeadlineExceeded);
      }
      std::this_thread::sleep_for(kPollInterval);
    }
  }

  // Drains the last host of --hosts through the admin API (as `syctl drain`),
  // waits until its actors are restored elsewhere, then stops it (it must exit 0).
  absl::Status DrainHost(int64_t step) {
    ChildProcess& host = hosts_[static_cast<size_t>(o_.hosts - 1)];
    out_ << "\nsy-local: --drain_host_at_step: draining " << host.role() << " after step " << step << std::endl;
    if (absl::Status s = WaitForAnyCheckpoint(); !s.ok()) return s;
    absl::StatusOr<std::unique_ptr<syctl::AdminClient>> client = syctl::AdminClient::Connect(coordinator_endpoint_);
    if (!client.ok()) return Failed(coordinator_[0], absl::StrCat("cannot be reached: ", client.status().message()));
    const Clock::time_point give_up = After(60);
    while (true) {
      HoldTrainers(true);  // the drain's moves (and the trainers' rollback) start before they can finish
      absl::StatusOr<cluster::AdminReplyMessage> drained = (*client)->Call(
          [&](proto::admin::AdminRequest::Builder r) { r.setDrain(host.role()); }, absl::Seconds(10));
      HoldTrainers(false);
      if (drained.ok()) break;
      // Unavailable: a recovery is under way; the drain is accepted after it.
      if (!absl::IsUnavailable(drained.status()) || Clock::now() > give_up) {
        return Failed(coordinator_[0], absl::StrCat("refused to drain ", host.role(), ": ", drained.status().message()));
      }
      if (absl::Status s = CheckStopAndDeadline(); !s.ok()) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    // The drain started a recovery (new table, restore, rollbacks): the host is free once it is over.
    while (true) {
      absl::StatusOr<cluster::AdminReplyMessage> status =
          (*client)->Call([](proto::admin::AdminRequest::Builder r) { r.setStatus(); }, absl::Seconds(10));
      if (!status.ok()) return Failed(coordinator_[0], absl::StrCat("status after the drain: ", status.status().message()));
      if (status->reply().which() != proto::admin::AdminReply::STATUS) {
        return Failed(coordinator_[0], "answered a status request with something else");
      }
      const std::string phase = status->reply().getStatus().getPhase().cStr();
      if (absl::StartsWith(phase, "degraded")) {
        return Failed(coordinator_[0], absl::StrCat("could not move ", host.role(), "'s actors: ", phase));
      }
      if (phase != "recovering") break;
      if (absl::Status s = CheckStopAndDeadline(); !s.ok()) return s;
      if (Clock::now() > give_up) {
        return Failed(coordinator_[0], absl::StrCat("did not finish moving ", host.role(), "'s actors within 60 s"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    absl::StatusOr<ClusterFacts> facts = QueryClusterFacts(coordinator_endpoint_, absl::Seconds(10));
    if (!facts.ok()) return Failed(coordinator_[0], absl::StrCat("placement after the drain: ", facts.status().message()));
    for (const auto& [expert, holders] : facts->expert_hosts) {
      if (std::find(holders.begin(), holders.end(), host.role()) != holders.end()) {
        return Failed(coordinator_[0], absl::StrCat("still places expert ", expert.first, "/", expert.second, " on ",
                                                    host.role(), " after draining it"));
      }
    }
    out_ << "sy-local: " << host.role() << " holds no actors: stopping it" << std::endl;
    drained_.insert(host.role());
    host.Signal(SIGTERM);
    const Clock::time_point kill_at = After(o_.grace_s);
    while (!host.Poll()) {
      if (Clock::now() > kill_at) host.Signal(SIGKILL);
      std::this_thread::sleep_for(kPollInterval);
    }
    if (!host.Succeeded()) return Failed(host, "did not stop cleanly on SIGTERM after its drain");
    return absl::OkStatus();
  }

  void KillNow(ChildProcess& c, const char* flag, int64_t step) {
    out_ << "\nsy-local: " << flag << ": SIGKILL " << c.role() << " (pid " << c.pid() << ") after step " << step
         << std::endl;
    killed_.insert(c.role());
    c.Signal(SIGKILL);
  }

  absl::Status CheckStopAndDeadline() {
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

  // Stops every process, then describes `culprit`'s failure with its log tail.
  absl::Status Failed(const ChildProcess& culprit, const std::string& what,
                      absl::StatusCode code = absl::StatusCode::kAborted) {
    if (progress_) progress_->Finish();
    StopAll();
    return absl::Status(code, absl::StrCat(culprit.role(), " (pid ", culprit.pid(), ") ", what, ": ",
                                           culprit.ExitDescription(), "; last lines of ", culprit.log_path(),
                                           ":\n", TailOfFile(culprit.log_path(), kTailLines)));
  }

  // SIGTERM to every running process (trainers first, the coordinator last), SIGKILL after the grace period.
  void StopAll() {
    HoldTrainers(false);  // a stopped process would not act on SIGTERM
    std::vector<ChildProcess*> all;
    for (ChildProcess& t : trainers_) all.push_back(&t);
    for (ChildProcess& h : hosts_) all.push_back(&h);
    for (ChildProcess& c : coordinator_) all.push_back(&c);
    for (ChildProcess* c : all) {
      if (!c->Poll()) c->Signal(SIGTERM);
    }
    const Clock::time_point kill_at = After(o_.grace_s);
    while (true) {
      bool running = false;
      for (ChildProcess* c : all) running = running || !c->Poll();
      if (!running) return;
      if (Clock::now() > kill_at) {
        for (ChildProcess* c : all) c->Signal(SIGKILL);
      }
      std::this_thread::sleep_for(kPollInterval);
    }
  }

  // summary.json gains what the coordinator saw: recoveries, checkpoints, moves and
  // the host load balance over the first and last 10 steps; and each host process's
  // CPU time (the hosts' work, replays included).
  absl::Status AddFacts(const ClusterFacts& facts) {
    absl::StatusOr<RunReport> report = ReadRunReport(o_.workdir);
    if (!report.ok()) return report.status();
    std::vector<std::string> hosts;  // every host the run ended with (a joined one too, not a drained one)
    for (const ChildProcess& h : hosts_) {
      if (!drained_.count(h.role())) hosts.push_back(h.role());
    }
    const size_t n = std::min<size_t>(10, report->steps.size());
    const std::vector<StepRecord> first(report->steps.begin(), report->steps.begin() + n);
    const std::vector<StepRecord> last(report->steps.end() - n, report->steps.end());
    std::map<std::string, double> cpu;
    for (const ChildProcess& h : hosts_) cpu[h.role()] = h.cpu_seconds();
    return AddClusterFactsToSummary(Path("summary.json"), facts, MaxOverMeanHostLoad(first, facts, hosts),
                                    MaxOverMeanHostLoad(last, facts, hosts), cpu);
  }

  absl::Status Report() {
    absl::StatusOr<RunReport> report = ReadRunReport(o_.workdir);
    if (!report.ok()) {
      return absl::DataLossError(absl::StrCat("trainer-0 exited 0 but its run record is unusable: ",
                                              report.status().message()));
    }
    out_ << FormatRunReport(*report);
    out_ << "sy-local: logs in " << o_.workdir << "/<role>-<i>.log; metrics in " << Path("metrics.jsonl")
         << "; summary in " << Path("summary.json") << std::endl;
    return absl::OkStatus();
  }

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
  bool host_killed_ = false, trainer_killed_ = false, coordinator_killed_ = false;
  bool host_added_ = false, host_drained_ = false;
  std::set<std::string> drained_;  // roles drained and stopped on purpose (--drain_host_at_step)
  int threads_ = 1;                // compute threads of each process
  ClusterFacts facts_before_restart_;  // counts of a coordinator killed and restarted
};

// Flags every process shares: device, threads, log level, then the model flags as given.
void AppendCommon(const LauncherOptions& o, int threads, std::vector<std::string>* argv) {
  argv->push_back("--device=" + o.device);
  argv->push_back(absl::StrCat("--threads=", threads));
  argv->push_back("--log_level=" + o.log_level);
  argv->insert(argv->end(), o.model_flags.begin(), o.model_flags.end());
}

void AppendRun(const LauncherOptions& o, std::vector<std::string>* argv) {
  argv->push_back("--data=" + o.data);
  argv->push_back(absl::StrCat("--steps=", o.steps));
  argv->push_back("--workdir=" + o.workdir);
}

}  // namespace

std::vector<std::string> StandaloneCommand(const LauncherOptions& o, const std::string& bin_dir, int threads) {
  std::vector<std::string> argv = {bin_dir + "/sy-trainer", "--standalone"};
  AppendRun(o, &argv);
  AppendCommon(o, threads, &argv);
  argv.insert(argv.end(), o.trainer_args.begin(), o.trainer_args.end());
  return argv;
}

std::vector<std::string> HostCommand(const LauncherOptions& o, const std::string& bin_dir, int host_index,
                                     int threads, const std::string& coordinator) {
  std::vector<std::string> argv = {bin_dir + "/sy-expert-host", "--listen=tcp://127.0.0.1:0",
                                   absl::StrCat("--ready_file=", o.workdir, "/host-", host_index, ".ready"),
                                   absl::StrCat("--host_index=", host_index),
                                   // A host joining beyond --hosts counts itself (its static actors are
                                   // dropped when the coordinator's table arrives).
                                   absl::StrCat("--num_hosts=", std::max(o.hosts, host_index + 1))};
  if (!coordinator.empty()) argv.push_back("--coordinator=" + coordinator);
  if (o.checkpoint_every > 0) argv.push_back(absl::StrCat("--checkpoint_every=", o.checkpoint_every));
  AppendCommon(o, threads, &argv);
  argv.insert(argv.end(), o.host_args.begin(), o.host_args.end());
  return argv;
}

std::vector<std::string> TrainerCommand(const LauncherOptions& o, const std::string& bin_dir, int trainer_index,
                                        const std::vector<std::string>& host_endpoints, int threads,
                                        const std::string& coordinator) {
  std::vector<std::string> argv = {bin_dir + "/sy-trainer", "--hosts=" + absl::StrJoin(host_endpoints, ","),
                                   absl::StrCat("--trainer_index=", trainer_index),
                                   absl::StrCat("--num_trainers=", o.trainers)};
  if (!coordinator.empty()) argv.push_back("--coordinator=" + coordinator);
  AppendRun(o, &argv);
  AppendCommon(o, threads, &argv);
  argv.insert(argv.end(), o.trainer_args.begin(), o.trainer_args.end());
  return argv;
}

absl::StatusOr<std::vector<std::string>> CoordinatorCommand(const LauncherOptions& o, const std::string& bin_dir) {
  std::vector<std::string> model_args = o.model_flags;
  model_args.insert(model_args.end(), {"--standalone", "--data=" + o.data, absl::StrCat("--steps=", o.steps)});
  absl::StatusOr<cluster::TrainerOptions> parsed = cluster::ParseTrainerOptions(model_args);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<gpu::ModelConfig> config = cluster::ModelConfigFromOptions(*parsed);
  if (!config.ok()) return config.status();
  std::vector<std::string> argv = {bin_dir + "/sy-coordinator", "--listen=tcp://127.0.0.1:0",
                                   absl::StrCat("--ready_file=", o.workdir, "/coordinator.ready"),
                                   absl::StrCat("--db=", o.workdir, "/coordinator.db"),
                                   absl::StrCat("--expected_hosts=", o.hosts),
                                   absl::StrCat("--seed=", parsed->seed),
                                   absl::StrCat("--checkpoint_every=", o.checkpoint_every),
                                   "--log_level=" + o.log_level};
  argv.insert(argv.end(), o.coordinator_args.begin(), o.coordinator_args.end());
  return argv;
}

absl::Status RunLocalCluster(const LauncherOptions& o, std::ostream& out, const std::atomic<bool>& stop) {
  Cluster cluster(o, out, stop);
  return cluster.Run();
}

}  // namespace sy::local
