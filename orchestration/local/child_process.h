// One process started by sy-local: its role name ("host-0", "trainer-1"), its
// pid, its log file (stdout and stderr both go there) and, once reaped, how it
// ended, with the CPU time it used. The child runs in its own process group (a terminal's Ctrl-C reaches
// only sy-local, which then stops everyone in order) and gets SIGTERM if
// sy-local dies. Not thread-safe: the launcher's single control loop owns it.
//
//   auto child = ChildProcess::Start("host-0", {"/path/sy-expert-host", "--x=1"}, "DIR/host-0.log");
//   while (!child->Poll()) sleep...;  child->Succeeded(), child->ExitDescription()
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sy::local {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with `argv`, stdin from /dev/null, output to
  // `log_path` (truncated, or appended to with `append`: a restarted process). FailedPrecondition (not retryable) when the log
  // cannot be opened or the program cannot be executed (e.g. missing binary):
  // the message names the role and the path.
  static absl::StatusOr<ChildProcess> Start(std::string role, const std::vector<std::string>& argv,
                                            std::string log_path, bool append = false);

  const std::string& role() const { return role_; }
  const std::string& log_path() const { return log_path_; }
  pid_t pid() const { return pid_; }

  // Reaps the child if it has ended (never blocks); true once it has ended.
  bool Poll();
  bool Exited() const { return exited_; }
  // True when it ended with exit status 0.
  bool Succeeded() const;
  // True when it ended by `signal`.
  bool KilledBy(int signal) const;
  // "exit status 2", "killed by signal 9 (Killed)"; "running" before it ended.
  std::string ExitDescription() const;
  // Sends `signal` while it runs; a no-op after it ended.
  void Signal(int signal) const;
  // User + system CPU seconds it used, once reaped (0 before, or when reaped elsewhere).
  double cpu_seconds() const { return cpu_seconds_; }

 private:
  ChildProcess(std::string role, std::string log_path, pid_t pid)
      : role_(std::move(role)), log_path_(std::move(log_path)), pid_(pid) {}

  std::string role_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int wait_status_ = 0;
  double cpu_seconds_ = 0;
};

// The last `max_lines` lines of the file at `path` (reads at most its last
// 64 KiB); "" when it cannot be read.
std::string TailOfFile(const std::string& path, int max_lines);

}  // namespace sy::local
