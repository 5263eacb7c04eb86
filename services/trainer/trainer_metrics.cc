// The trainer's live Prometheus metrics (see trainer_metrics.h).
#include "services/trainer/trainer_metrics.h"

#include <string>

namespace sy::trainer {
namespace {

constexpr char kDroppedHelp[] =
    "Fraction of the last recorded step's routed tokens dropped by capacity (per Switch layer with switch_layer).";

}  // namespace

std::vector<double> StepSecondsBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}

TrainerMetrics::TrainerMetrics(metrics::Registry& registry)
    : registry_(registry),
      step_(registry.GetGauge("sy_trainer_step", "Last step recorded by the leader trainer.")),
      loss_(registry.GetGauge("sy_trainer_loss", "Loss of the last recorded step (CE + load balancing + z).")),
      tokens_per_second_(registry.GetGauge("sy_trainer_tokens_per_second",
                                           "Tokens per second of the last recorded step (all trainers).")),
      dropped_fraction_(registry.GetGauge("sy_trainer_dropped_fraction", kDroppedHelp)),
      wire_bytes_(registry.GetCounter("sy_trainer_wire_bytes_total",
                                      "Bytes the trainers sent to hosts in recorded steps (0 standalone).")),
      step_seconds_(registry.GetHistogram("sy_trainer_step_seconds", "Wall time of each step this trainer trained.",
                                          StepSecondsBuckets())) {}

void TrainerMetrics::ObserveStepSeconds(double seconds) { step_seconds_.Observe(seconds); }

void TrainerMetrics::RecordStep(const StepMetrics& step) {
  loss_.Set(step.loss);
  tokens_per_second_.Set(step.tokens_per_s);
  dropped_fraction_.Set(step.dropped_frac);
  if (step.bytes_sent) wire_bytes_.Increment(static_cast<double>(*step.bytes_sent));
  for (size_t layer = 0; layer < step.switch_layer_dropped_frac.size(); ++layer) {
    registry_.GetGauge("sy_trainer_dropped_fraction", kDroppedHelp, {{"switch_layer", std::to_string(layer)}})
        .Set(step.switch_layer_dropped_frac[layer]);
  }
  for (size_t layer = 0; layer < step.expert_tokens.size(); ++layer) {
    for (size_t expert = 0; expert < step.expert_tokens[layer].size(); ++expert) {
      registry_
          .GetCounter("sy_trainer_expert_tokens_total", "Tokens routed to each expert in recorded steps.",
                      {{"switch_layer", std::to_string(layer)}, {"expert", std::to_string(expert)}})
          .Increment(static_cast<double>(step.expert_tokens[layer][expert]));
    }
  }
  step_.Set(static_cast<double>(step.step));  // last: a scrape that sees step s sees its figures
}

}  // namespace sy::trainer
