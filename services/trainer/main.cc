// sy-trainer: parses flags and runs the standalone trainer (--standalone) or one
// trainer of a distributed run (--hosts=...). Exit codes: 0 done, 1 training
// failed, 2 bad flags. All logic lives in sy_trainer_lib.
#include <iostream>
#include <string>
#include <vector>

#include "common/log/log.h"
#include "services/cluster/cluster_options.h"
#include "services/cluster/options.h"
#include "services/trainer/distributed_trainer.h"
#include "services/trainer/standalone_trainer.h"

namespace {

template <class Trainer, class Options>
int Train(const Options& options) {
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(options);
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

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<sy::cluster::ClusterTrainerOptions> options = sy::cluster::ParseClusterTrainerOptions(args);
  if (!options.ok()) {
    std::cerr << "sy-trainer: " << options.status().message() << "\n(run sy-trainer --help for the flags)\n";
    return 2;
  }
  if (options->base.help) {
    std::cout << sy::cluster::HelpText() << sy::cluster::ClusterTrainerHelpText();
    return 0;
  }
  sy::log::SetMinLevel(*sy::log::ParseLevel(options->base.log_level));  // the parser admits valid levels only
  if (options->base.standalone) return Train<sy::trainer::StandaloneTrainer>(options->base);
  return Train<sy::trainer::DistributedTrainer>(*options);
}
