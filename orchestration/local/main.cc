// sy-local: parses flags and runs the local cluster. Exit codes: 0 success,
// 1 a process failed, 2 bad flags, 130 interrupted (Ctrl-C / SIGTERM stop every
// process first). All logic lives in sy_local_lib and sy_local_flags.
#include <signal.h>

#include <atomic>
#include <iostream>
#include <string>
#include <vector>

#include "common/base/process_setup.h"
#include "common/flags/flags.h"
#include "orchestration/local/launcher_flags.h"
#include "orchestration/local/local_cluster.h"

namespace {

std::atomic<bool> stop_requested{false};

void RequestStop(int) { stop_requested.store(true); }

}  // namespace

int main(int argc, char** argv) {
  sy::base::SetUpProcess();
  const std::vector<std::string> args(argv + 1, argv + argc);
  sy::flags::ExitWithHelpIfRequested(args, sy::local::kLauncherUsage);
  absl::StatusOr<sy::local::LauncherOptions> options = sy::local::ParseLauncherOptions(args);
  sy::flags::ExitIfInvalid({options.status()});
  struct sigaction action = {};
  action.sa_handler = RequestStop;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  const absl::Status status = sy::local::RunLocalCluster(*options, std::cout, stop_requested);
  if (status.ok()) return 0;
  std::cerr << "sy-local: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kCancelled ? 130 : 1;
}
