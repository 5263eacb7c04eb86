// The start of a local cluster: its workdir, then the processes, each waited for
// until it is ready (see cluster.h).
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "orchestration/local/cluster.h"
#include "orchestration/local/process_commands.h"
#include "services/cluster/cluster_keys.h"

namespace sy::local {

absl::Status Cluster::PrepareWorkdir() {
  std::error_code ec;
  std::filesystem::create_directories(o_.workdir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat("cannot create --workdir ", o_.workdir, ": ", ec.message()));
  }
  // A stale record of an earlier run must not pass for this run's.
  for (const char* name : {"metrics.jsonl", "summary.json"}) std::filesystem::remove(Path(name), ec);
  for (int h = 0; h <= o_.hosts; ++h) std::filesystem::remove(ReadyFile(h), ec);  // and a joining host's
  std::filesystem::remove(Path("coordinator.ready"), ec);
  if (absl::Status s = MakeKeys(); !s.ok()) return s;
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

absl::Status Cluster::MakeKeys() {
  if (o_.insecure || o_.hosts == 0) return absl::OkStatus();  // plain TCP, or one process without sockets
  // Fresh keys for every run: the coordinator, the hosts, the trainers and sy-local as operator-0.
  std::error_code ec;
  std::filesystem::remove_all(KeysDir(o_), ec);
  if (absl::Status s = cluster::WriteClusterKeys(KeysDir(o_), o_.hosts, o_.trainers, 1); !s.ok()) return s;
  absl::StatusOr<transport::CurveKeys> curve = cluster::LoadNodeCurve({KeysDir(o_), false}, "operator-0");
  if (!curve.ok()) return curve.status();
  admin_curve_ = *std::move(curve);
  return absl::OkStatus();
}

absl::Status Cluster::Start(const std::string& role, const std::vector<std::string>& argv,
                            std::vector<ChildProcess>* into) {
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(role, argv, Path(role + ".log"));
  if (!child.ok()) {
    StopAll();
    return child.status();
  }
  into->push_back(*std::move(child));
  return absl::OkStatus();
}

absl::Status Cluster::StartStandalone(int threads) {
  if (absl::Status s = Start("trainer-0", StandaloneCommand(o_, bin_dir_, threads), &trainers_); !s.ok()) return s;
  progress_.emplace(trainers_[0].log_path(), out_);
  return absl::OkStatus();
}

absl::Status Cluster::StartCoordinator(const std::string& endpoint) {
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
  } else if (o_.kill_coordinator_before_manifest_of_checkpoint > 0) {  // the first start only
    argv->push_back(absl::StrCat("--kill_self_before_manifest_of_checkpoint=",
                                 o_.kill_coordinator_before_manifest_of_checkpoint));
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

absl::Status Cluster::StartDistributed(int threads) {
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
    absl::StatusOr<int64_t> restored_step = RestoreFromCheckpoint();
    if (!restored_step.ok()) return restored_step.status();
    resume_step = *restored_step;
  }
  for (int t = 0; t < o_.trainers; ++t) {
    std::vector<std::string> argv = TrainerCommand(o_, bin_dir_, t, *endpoints, threads, coordinator_endpoint_);
    if (resume_step > 0) argv.push_back(absl::StrCat("--resume_step=", resume_step));
    if (absl::Status s = Start(absl::StrCat("trainer-", t), argv, &trainers_); !s.ok()) return s;
  }
  progress_.emplace(trainers_[0].log_path(), out_);
  return absl::OkStatus();
}

std::optional<std::string> Cluster::ReadEndpoint(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  if (text.empty() || text.back() != '\n') return std::nullopt;
  return std::string(absl::StripAsciiWhitespace(text));
}

absl::StatusOr<std::vector<std::string>> Cluster::WaitForReadyFiles() {
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

}  // namespace sy::local
