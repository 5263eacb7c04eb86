// sy-local: parses flags and runs the local cluster. Exit codes: 0 success,
// 1 a process failed, 2 bad flags, 130 interrupted (Ctrl-C / SIGTERM stop every
// process first). All logic lives in sy_local_lib.
#include <signal.h>

#include <atomic>
#include <iostream>
#include <string>
#include <vector>

#include "orchestration/local/launcher_options.h"
#include "orchestration/local/local_cluster.h"

namespace {

std::atomic<bool> stop_requested{false};

void RequestStop(int) { stop_requested.store(true); }

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<sy::local::LauncherOptions> options = sy::local::ParseLauncherOptions(args);
  if (!options.ok()) {
    std::cerr << "sy-local: " << options.status().message() << "\n(run sy-local --help for the flags)\n";
    return 2;
  }
  if (options->help) {
    std::cout << sy::local::LauncherHelpText();
    return 0;
  }
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
