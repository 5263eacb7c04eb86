// sy-generate: samples text from a trained model (a run's saved weights or a
// coordinator's checkpoint). All logic lives in sy_generate_lib; see generate_command.h.
#include <iostream>
#include <string>
#include <vector>

#include "common/base/process_setup.h"
#include "common/flags/flags.h"
#include "common/flags/log_level_flag.h"
#include "services/generate/generate_command.h"

int main(int argc, char** argv) {
  sy::base::SetUpProcess();
  const std::vector<std::string> args(argv + 1, argv + argc);
  sy::flags::ExitWithHelpIfRequested(args, sy::generate::kGenerateUsage);
  absl::StatusOr<sy::generate::GenerateOptions> options = sy::generate::ParseGenerateOptions(args);
  sy::flags::ExitIfInvalid({options.status(), sy::flags::ApplyLogLevelFlag()});
  return sy::generate::RunGenerate(*options, std::cout, std::cerr);
}
