// Test helper: a real local cluster of sy-expert-host and sy-trainer processes on
// loopback, started the way sy-local does (ready files, --hosts list), each
// logging to DIR/<role>-<i>.log. Used by the trainer's cluster tests and by
// tests/fault/trainer_death. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace sy::trainer::testing {

// Starts `argv` with stdout and stderr appended to `log_path`; -1 on failure.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path);
// Waits for `pid`; its exit code, or 128 + signal when killed.
int WaitExit(pid_t pid);
std::string ReadFile(const std::string& path);
std::vector<std::string> Split(const std::string& flags);  // on spaces

class LocalCluster {
 public:
  // `dir` is created; `flags` are the model/training flags given to every process.
  LocalCluster(std::string dir, std::string flags);
  ~LocalCluster();  // SIGKILLs whatever still runs

  // Starts H hosts (host_flags added to each) and waits for their ready files;
  // false (with the logs' tails in error()) when one does not come up in 30 s.
  bool StartHosts(int num_hosts, const std::string& host_flags = "");
  // Starts trainer t of T (trainer 0 writes DIR/metrics.jsonl, DIR/summary.json).
  pid_t StartTrainer(int index, int num_trainers, const std::string& extra = "");
  // Waits for a trainer started here; its exit code (see WaitExit).
  int WaitTrainer(pid_t pid);
  // SIGTERM to every host, then their exit codes.
  std::vector<int> StopHosts();
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  const std::string& dir() const { return dir_; }
  std::string error() const { return error_; }

 private:
  std::string dir_, flags_, error_;
  std::vector<pid_t> hosts_, trainers_;
  std::vector<std::string> endpoints_;
};

}  // namespace sy::trainer::testing
