// sy-local's command line: its own flags (cluster shape, run, timeouts, fault injection,
// elasticity) defined here (library sy_local_flags, linked by sy-local, its tests and
// the cluster benchmarks), plus --log_level and the model and training flags of
// services/cluster, which it checks and forwards to each child.
//
// Flags are process-global: not thread-safe; call from main(), a test or a benchmark's
// thread before it starts others.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "orchestration/local/launcher_options.h"

namespace sy::local {

inline constexpr char kLauncherUsage[] =
    "usage: sy-local --hosts=H --trainers=T --steps=S --data=FILE --workdir=DIR [model/training flags]\n"
    "Starts H sy-expert-host and T sy-trainer processes on loopback (H=0: one sy-trainer --standalone),\n"
    "waits for the trainers, stops the hosts and prints a summary. Each process logs to DIR/<role>-<i>.log;\n"
    "DIR/metrics.jsonl and DIR/summary.json come from trainer 0. The model and training flags are checked\n"
    "and forwarded to every process.\n"
    "Exit codes: 0 success, 1 a process failed (named, with its log tail), 2 bad flags, 130 interrupted.\n";

// Parses `args` (argv without argv[0]) over the flags' defaults into the options,
// checked with CheckLauncherOptions; InvalidArgument naming the flag, also for a flag
// sy-local sets on its children itself (e.g. --trainer_index). A pure function of `args`
// (flags::ParseArgs). --help is main()'s (flags::ExitWithHelpIfRequested).
absl::StatusOr<LauncherOptions> ParseLauncherOptions(const std::vector<std::string>& args);

}  // namespace sy::local
