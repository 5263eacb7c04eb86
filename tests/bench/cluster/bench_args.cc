// The cluster benchmarks' shared command line (see bench_args.h).
#include "tests/bench/cluster/bench_args.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "common/base/philox.h"

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

}  // namespace

BenchArgs ParseBenchArgs(int argc, char** argv, BenchArgs defaults, bool takes_hosts) {
  BenchArgs a = std::move(defaults);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (absl::StartsWith(arg, "--data=")) {
      a.data = arg.substr(7);
    } else if (absl::StartsWith(arg, "--workdir=")) {
      a.workdir = arg.substr(10);
    } else if (absl::StartsWith(arg, "--steps=")) {
      a.steps = std::atoll(arg.c_str() + 8);
    } else if (takes_hosts && absl::StartsWith(arg, "--hosts=")) {
      a.hosts = std::atoi(arg.c_str() + 8);
    } else if (arg == "--help") {
      a.help = true;
    } else {
      a.model_flags.push_back(arg);
    }
  }
  if (a.help) return a;
  std::filesystem::create_directories(a.workdir);
  if (a.data.empty()) {
    a.data = a.workdir + "/corpus.txt";
    WriteCorpus(a.data);
  }
  return a;
}

}  // namespace sy::bench
