// sy-expert-host: parses flags, starts the host (HostProcess), writes the bound
// endpoint to --ready_file and serves until SIGTERM/SIGINT, then shuts down
// cleanly (exit 0). Exit codes: 1 failed to start, 2 bad flags. All logic lives in
// sy_expert_host_lib and sy_expert_host_flags.
#include <csignal>
#include <iostream>
#include <pthread.h>
#include <string>
#include <vector>

#include "common/base/process_setup.h"
#include "common/flags/flags.h"
#include "common/log/log.h"
#include "services/cluster/ready_file.h"
#include "services/expert_host/host_flags.h"
#include "services/expert_host/host_process.h"

int main(int argc, char** argv) {
  sy::base::SetUpProcess();
  const std::vector<std::string> args(argv + 1, argv + argc);
  sy::flags::ExitWithHelpIfRequested(args, sy::expert_host::kHostUsage);
  absl::StatusOr<sy::cluster::HostOptions> options = sy::expert_host::ParseHostOptions(args);
  sy::flags::ExitIfInvalid({options.status()});
  sy::log::SetMinLevel(*sy::log::ParseLevel(options->model.log_level));  // the checks admit valid levels only
  // Every thread started below inherits the blocked signals; only sigwait sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<std::unique_ptr<sy::expert_host::HostProcess>> host = sy::expert_host::HostProcess::Start(*options);
  if (!host.ok()) {
    std::cerr << "sy-expert-host: " << host.status() << "\n";
    return host.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  if (!options->ready_file.empty()) {
    if (absl::Status s = sy::cluster::WriteReadyFile(options->ready_file, (*host)->endpoint()); !s.ok()) {
      std::cerr << "sy-expert-host: " << s << "\n";
      return 1;
    }
  }
  int signal = 0;
  sigwait(&stop_signals, &signal);
  SY_LOG(INFO) << "expert host " << options->host_index << ": signal " << signal << ", shutting down";
  (*host)->Stop();
  host->reset();
  return 0;
}
