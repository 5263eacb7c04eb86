// sy-trainer: parses flags and runs the standalone trainer (--standalone) or one
// trainer of a distributed run (--hosts=...), with /metrics when --metrics_port is set
// (common_flags.h). Exit codes: 0 done, 1 training failed (or /metrics cannot listen),
// 2 bad flags. All logic lives in sy_trainer_lib and sy_trainer_flags.
#include <iostream>
#include <string>
#include <vector>

#include "common/base/process_setup.h"
#include "common/flags/common_flags.h"
#include "common/flags/flags.h"
#include "common/log/log.h"
#include "services/trainer/distributed_trainer.h"
#include "services/trainer/standalone_trainer.h"
#include "services/trainer/trainer_flags.h"
#include "services/trainer/trainer_metrics.h"

namespace {

template <class Trainer, class Options>
int Train(const Options& options, sy::trainer::TrainerMetrics* live) {
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(options);
  if (!trainer.ok()) {
    std::cerr << "sy-trainer: " << trainer.status() << "\n";
    return trainer.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  absl::StatusOr<sy::trainer::RunResult> result = (*trainer)->Run(std::cout, live);
  if (!result.ok()) {
    std::cerr << "sy-trainer: training failed: " << result.status() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sy::base::SetUpProcess();
  const std::vector<std::string> args(argv + 1, argv + argc);
  sy::flags::ExitWithHelpIfRequested(args, sy::trainer::kTrainerUsage);
  absl::StatusOr<sy::cluster::ClusterTrainerOptions> options = sy::trainer::ParseClusterTrainerOptions(args);
  sy::flags::ExitIfInvalid({options.status()});
  sy::log::SetMinLevel(*sy::log::ParseLevel(options->base.log_level));  // the checks admit valid levels only
  sy::metrics::Registry registry;
  absl::StatusOr<std::unique_ptr<sy::metrics::HttpExporter>> exporter = sy::flags::StartMetricsExporterFromFlags(registry);
  if (!exporter.ok()) {
    std::cerr << "sy-trainer: /metrics: " << exporter.status() << "\n";
    return exporter.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  sy::trainer::TrainerMetrics live(registry);
  if (options->base.standalone) return Train<sy::trainer::StandaloneTrainer>(options->base, &live);
  return Train<sy::trainer::DistributedTrainer>(*options, &live);
}
