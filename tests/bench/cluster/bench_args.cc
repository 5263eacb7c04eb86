// The cluster benchmarks' shared command line (see bench_args.h).
#include "tests/bench/cluster/bench_args.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "common/base/philox.h"
#include "common/flags/flags.h"

// sy-local's flags (orchestration/local/launcher_flags.cc): a benchmark's run is an sy-local run.
ABSL_DECLARE_FLAG(int64_t, steps);
ABSL_DECLARE_FLAG(int32_t, hosts);
ABSL_DECLARE_FLAG(std::string, data);
ABSL_DECLARE_FLAG(std::string, workdir);

namespace sy::bench {
namespace {

// A deterministic English-like corpus (words drawn with a counter-based RNG), for runs without --data.
void WriteCorpus(const std::string& path) {
  const std::vector<std::string> words = {"the", "of", "and", "to", "in", "is", "that", "it", "was", "for", "on",
                                          "are", "with", "they", "be", "this", "from", "have", "or", "by", "one",
                                          "had", "not", "but", "what", "all", "were", "when", "we", "there", "can",
                                          "expert", "router", "token", "switch", "layer", "capacity", "gradient"};
  const CounterRng rng(7, RngStream::kData);
  std::ofstream out(path);
  for (uint64_t i = 0, bytes = 0; bytes < 400000; ++i) {
    const std::string& w = words[rng.Below(i, words.size())];
    const char* sep = rng.Below(i + (1ull << 40), 10) == 0 ? ".\n" : " ";
    out << w << sep;
    bytes += w.size() + 1;
  }
}

// The flags a benchmark reads itself rather than passing on.
bool IsBenchFlag(absl::string_view name, bool takes_hosts, const std::vector<std::string>& own_flags) {
  return name == "steps" || name == "data" || name == "workdir" || (takes_hosts && name == "hosts") ||
         std::find(own_flags.begin(), own_flags.end(), name) != own_flags.end();
}

// --hosts is refused by a benchmark that runs its own cluster shapes.
absl::Status RefuseHosts(const std::vector<std::string>& given, bool takes_hosts) {
  for (const std::string& arg : given) {
    if (!takes_hosts && flags::FlagName(arg) == "hosts") {
      return absl::InvalidArgumentError("--hosts: this benchmark runs its own cluster shapes");
    }
  }
  return absl::OkStatus();
}

}  // namespace

BenchArgs ParseBenchArgs(int argc, char** argv, const std::vector<std::string>& defaults, bool takes_hosts,
                         absl::string_view usage, const std::vector<std::string>& own_flags) {
  const std::vector<std::string> given(argv + (argc > 0 ? 1 : 0), argv + argc);
  flags::ExitWithHelpIfRequested(given, usage);
  std::vector<std::string> line = defaults;
  line.insert(line.end(), given.begin(), given.end());
  absl::StatusOr<std::vector<std::string>> positional = flags::ParseArgs(line, flags::Spelling::kStrict);
  flags::ExitIfInvalid({RefuseHosts(given, takes_hosts), positional.status()});
  flags::ExitIfInvalid({flags::RequireNoPositionalArgs(*positional)});
  BenchArgs a;
  a.steps = absl::GetFlag(FLAGS_steps);
  a.hosts = absl::GetFlag(FLAGS_hosts);
  a.data = absl::GetFlag(FLAGS_data);
  a.workdir = absl::GetFlag(FLAGS_workdir);
  for (const std::string& arg : line) {
    if (!IsBenchFlag(flags::FlagName(arg), takes_hosts, own_flags)) a.model_flags.push_back(arg);
  }
  std::filesystem::create_directories(a.workdir);
  if (a.data.empty()) {
    a.data = a.workdir + "/corpus.txt";
    WriteCorpus(a.data);
  }
  return a;
}

}  // namespace sy::bench
