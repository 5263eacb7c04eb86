// sy-coordinator's command line: the flags (ABSL_FLAG, defined in coordinator_flags.cc
// so that main.cc stays a thin shell and tests can set them), their range checks and
// their translation into CoordinatorOptions, and the ready file it writes once
// listening. Not thread-safe: use from main() (or a test) before starting threads.
//
//   sy::flags::ParseCommandLine(argc, argv, sy::coordinator::kCoordinatorUsage);
//   absl::StatusOr<CoordinatorOptions> options = CoordinatorOptionsFromFlags();
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/coordinator/coordinator_options.h"
#include "services/coordinator/coordinator_service.h"

namespace sy::coordinator {

inline constexpr char kCoordinatorUsage[] =
    "sy-coordinator --db=PATH [--listen=tcp://127.0.0.1:0] [--ready_file=PATH] "
    "[--heartbeat_timeout_ms=N] [--checkpoint_every=N] [--retain=K] "
    "[--admin_listen=ENDPOINT --admin_keys=FILE]";

// The options the parsed flags describe; InvalidArgument naming every flag out of
// range ("--retain=0: must be > 0; ...") when one is.
absl::StatusOr<CoordinatorOptions> CoordinatorOptionsFromFlags();

// With --ready_file, writes the bound endpoint there atomically (line 1), and with
// --admin_listen the admin endpoint (line 2); nothing without the flag.
absl::Status WriteReadyFileFromFlags(const CoordinatorService& service);

}  // namespace sy::coordinator
