// sy-trainer: parses flags and runs the standalone trainer. Exit codes: 0 done,
// 1 training failed, 2 bad flags. All logic lives in sy_trainer_lib.
#include <iostream>
#include <string>
#include <vector>

#include "common/log/log.h"
#include "services/trainer/options.h"
#include "services/trainer/standalone_trainer.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<sy::trainer::TrainerOptions> options = sy::trainer::ParseTrainerOptions(args);
  if (!options.ok()) {
    std::cerr << "sy-trainer: " << options.status().message() << "\n(run sy-trainer --help for the flags)\n";
    return 2;
  }
  if (options->help) {
    std::cout << sy::trainer::HelpText();
    return 0;
  }
  if (!options->standalone) {
    std::cerr << "sy-trainer: only --standalone training exists so far (distributed training comes with sy-local)\n";
    return 2;
  }
  sy::log::SetMinLevel(*sy::log::ParseLevel(options->log_level));  // the parser admits valid levels only
  absl::StatusOr<std::unique_ptr<sy::trainer::StandaloneTrainer>> trainer =
      sy::trainer::StandaloneTrainer::Create(*options);
  if (!trainer.ok()) {
    std::cerr << "sy-trainer: " << trainer.status() << "\n";
    return trainer.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  absl::StatusOr<sy::trainer::RunResult> result = (*trainer)->Run(std::cout);
  if (!result.ok()) {
    std::cerr << "sy-trainer: training failed: " << result.status() << "\n";
    return 1;
  }
  return 0;
}
