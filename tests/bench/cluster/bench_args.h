// The command line the cluster benchmarks share: --steps, --data (a synthetic corpus
// is written into the workdir without it), --workdir, --hosts where a benchmark takes
// it, --help; every other flag is a model/training flag passed on to the runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sy::bench {

struct BenchArgs {
  int64_t steps = 30;
  int hosts = 2;
  std::string data;     // the corpus (after ParseBenchArgs: never empty)
  std::string workdir;  // created by ParseBenchArgs
  std::vector<std::string> model_flags;
  bool help = false;
};

// `defaults` holds the benchmark's defaults (model flags first: later ones win);
// `takes_hosts`: whether --hosts is the benchmark's own flag. Without --data it
// writes a deterministic English-like corpus to WORKDIR/corpus.txt.
BenchArgs ParseBenchArgs(int argc, char** argv, BenchArgs defaults, bool takes_hosts);

}  // namespace sy::bench
