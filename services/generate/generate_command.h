// sy-generate's command: its options, their flags (defined in generate_command.cc:
// link this library only into sy-generate and its tests) and the run itself, so that
// main() stays a few lines and the tests drive the same code.
//
//   sy-generate --checkpoint=RUN_DIR --tokens=N [--prompt=TEXT] [--temperature=T] [--seed=S]
//
// Flags are process-global: not thread-safe; call from main() or a test.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sy::generate {

inline constexpr char kGenerateUsage[] =
    "usage: sy-generate --checkpoint=DIR --tokens=N [--prompt=TEXT] [--temperature=T] [--seed=S]\n"
    "Prints the prompt and N bytes the trained model samples after it. DIR is a run's workdir\n"
    "(model.json and model.bin, written when sy-trainer or sy-local finishes) or a coordinator's\n"
    "checkpoint database (the latest committed checkpoint; its model config is --model_config or\n"
    "the model.json beside the database). Temperature 0 is greedy; a seed gives the same text\n"
    "every time. Exit codes: 0 done, 1 the forward pass failed, 2 bad flags or a bad checkpoint.\n";

struct GenerateOptions {
  std::string checkpoint;
  std::string model_config;  // a model.json for a checkpoint database ("" = beside it)
  int64_t tokens = 200;
  std::string prompt;
  double temperature = 0.8;
  uint64_t seed = 1;
};

// `args` (argv without argv[0]) over the flags' defaults, checked; InvalidArgument naming the flag.
absl::StatusOr<GenerateOptions> ParseGenerateOptions(const std::vector<std::string>& args);

// Loads the model, writes the prompt and the sampled bytes to `out` (nothing else) and
// a line saying where the weights came from to `err`. Returns the exit code: 0, 2 for
// a checkpoint that cannot be used (the reason on `err`), 1 when the forward pass fails.
int RunGenerate(const GenerateOptions& options, std::ostream& out, std::ostream& err);

}  // namespace sy::generate
