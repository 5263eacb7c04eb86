// Local cluster processes for tests (see cluster_processes.h).
#include "tests/unit/trainer/cluster_processes.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/cluster/cluster_keys.h"

extern char** environ;

namespace sy::trainer::testing {

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

int WaitExit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> Split(const std::string& flags) {
  return absl::StrSplit(flags, ' ', absl::SkipEmpty());
}

LocalCluster::LocalCluster(std::string dir, std::string flags) : dir_(std::move(dir)), flags_(std::move(flags)) {
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  // Every process runs with cluster keys, as in production (up to 8 hosts and 8 trainers).
  if (absl::Status s = cluster::WriteClusterKeys(dir_ + "/keys", 8, 8, 0); !s.ok()) error_ = s.ToString();
  flags_ += " --keys=" + dir_ + "/keys";
}

LocalCluster::~LocalCluster() {
  for (pid_t pid : trainers_) {
    if (kill(pid, SIGKILL) == 0) waitpid(pid, nullptr, 0);
  }
  for (pid_t pid : hosts_) {
    if (kill(pid, SIGKILL) == 0) waitpid(pid, nullptr, 0);
  }
}

bool LocalCluster::StartHosts(int num_hosts, const std::string& host_flags) {
  if (!error_.empty()) return false;  // no keys
  for (int i = 0; i < num_hosts; ++i) {
    std::vector<std::string> argv = {SY_EXPERT_HOST_BINARY, absl::StrCat("--ready_file=", dir_, "/host-", i, ".ready"),
                                     absl::StrCat("--host_index=", i), absl::StrCat("--num_hosts=", num_hosts)};
    for (const std::string& f : Split(flags_ + " " + host_flags)) argv.push_back(f);
    hosts_.push_back(Spawn(argv, absl::StrCat(dir_, "/host-", i, ".log")));
  }
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int i = 0; i < num_hosts; ++i) {
    const std::string ready = absl::StrCat(dir_, "/host-", i, ".ready");
    while (!std::filesystem::exists(ready)) {
      if (std::chrono::steady_clock::now() > give_up) {
        error_ = absl::StrCat("host ", i, " not ready; log:\n", ReadFile(absl::StrCat(dir_, "/host-", i, ".log")));
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::string endpoint = ReadFile(ready);
    while (!endpoint.empty() && endpoint.back() == '\n') endpoint.pop_back();
    endpoints_.push_back(endpoint);
  }
  return true;
}

pid_t LocalCluster::StartTrainer(int index, int num_trainers, const std::string& extra) {
  std::vector<std::string> argv = {SY_TRAINER_BINARY, absl::StrCat("--hosts=", absl::StrJoin(endpoints_, ",")),
                                   absl::StrCat("--trainer_index=", index),
                                   absl::StrCat("--num_trainers=", num_trainers)};
  if (index == 0) argv.push_back(absl::StrCat("--workdir=", dir_));
  for (const std::string& f : Split(flags_ + " " + extra)) argv.push_back(f);
  const pid_t pid = Spawn(argv, absl::StrCat(dir_, "/trainer-", index, ".log"));
  trainers_.push_back(pid);
  return pid;
}

int LocalCluster::WaitTrainer(pid_t pid) {
  for (size_t i = 0; i < trainers_.size(); ++i) {
    if (trainers_[i] == pid) trainers_.erase(trainers_.begin() + static_cast<long>(i));
  }
  return WaitExit(pid);
}

std::vector<int> LocalCluster::StopHosts() {
  std::vector<int> codes;
  for (pid_t pid : hosts_) kill(pid, SIGTERM);
  for (pid_t pid : hosts_) codes.push_back(WaitExit(pid));
  hosts_.clear();
  return codes;
}

}  // namespace sy::trainer::testing
