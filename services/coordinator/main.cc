// sy-coordinator: parses its flags (coordinator_flags.h), starts the service (and
// /metrics with --metrics_port), writes the ready file, serves until SIGINT/SIGTERM.
// Exit codes: 0 stopped by a signal, 1 could not start (database, socket), 2 bad flags.
#include <csignal>
#include <iostream>

#include "common/base/process_setup.h"
#include "common/flags/common_flags.h"
#include "common/flags/flags.h"
#include "common/log/log.h"
#include "services/coordinator/coordinator_flags.h"
#include "services/coordinator/coordinator_service.h"

int main(int argc, char** argv) {
  sy::base::SetUpProcess();
  sy::flags::ParseCommandLine(argc, argv, sy::coordinator::kCoordinatorUsage);
  const auto options = sy::coordinator::CoordinatorOptionsFromFlags();
  sy::flags::ExitIfInvalid({sy::flags::ApplyLogLevelFlag(), options.status()});

  // Block the stop signals before any thread starts, then wait for one of them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  sy::metrics::Registry registry;
  auto exporter = sy::flags::StartMetricsExporterFromFlags(registry);
  if (!exporter.ok()) {
    std::cerr << "sy-coordinator: metrics endpoint: " << exporter.status() << "\n";
    return 1;
  }
  auto service = sy::coordinator::CoordinatorService::Start(*options, &registry);
  if (!service.ok()) {
    std::cerr << "sy-coordinator: " << service.status() << "\n";
    return service.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  if (absl::Status s = sy::coordinator::WriteReadyFileFromFlags(**service); !s.ok()) {
    std::cerr << "sy-coordinator: " << s << "\n";
    return 1;
  }
  int signal = 0;
  sigwait(&stop_signals, &signal);
  SY_LOG(INFO) << "signal " << signal << ": stopping";
  (*service)->Stop();
  return 0;
}
