// The command line the cluster benchmarks share, on the Abseil flags sy-local
// registers (common/flags, like every binary): --steps, --data (a synthetic corpus is
// written into the workdir without it), --workdir, --hosts where a benchmark takes
// it, --help / --helpfull; every other flag is checked here and passed on to the runs
// (model and training flags, sy-local's own). Flags are written --name=value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace sy::bench {

// Steady state, for the end-to-end benchmarks: the steps that dropped under this share
// of their routed tokens (the router has balanced), and how many of them a run needs.
inline constexpr double kSteadyMaxDropped = 0.05;
inline constexpr int kSteadyMinSteps = 10;

struct BenchArgs {
  int64_t steps = 0;
  int hosts = 0;
  std::string data;     // the corpus (never empty)
  std::string workdir;  // created by ParseBenchArgs
  std::vector<std::string> model_flags;  // the flags passed on to the runs, defaults first
};

// Parses `defaults` (the benchmark's own, e.g. "--steps=30"; later flags win), then
// argv's flags. --help prints `usage` and the flags, exit code 0; a mistake (an
// unknown flag or value, --hosts to a benchmark that does not take it) is printed
// and exits with code 2. Without --data it writes a deterministic English-like
// corpus to WORKDIR/corpus.txt. `own_flags` names flags the benchmark defines and
// reads itself: like --steps, they are not passed on to the runs.
BenchArgs ParseBenchArgs(int argc, char** argv, const std::vector<std::string>& defaults, bool takes_hosts,
                         absl::string_view usage, const std::vector<std::string>& own_flags = {});

}  // namespace sy::bench
