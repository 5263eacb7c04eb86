// The trainer's live Prometheus metrics (sy-trainer --metrics_port), fed by the
// training loop so a dashboard can follow a run while it trains. Every trainer
// observes its own step times; the leader, which records the steps, also sets the
// run's figures (all trainers' micro-batches together):
//   sy_trainer_step                          last recorded step (gauge)
//   sy_trainer_loss                          its loss (gauge)
//   sy_trainer_tokens_per_second             its throughput (gauge)
//   sy_trainer_dropped_fraction              routed tokens dropped by capacity; with label
//                                            switch_layer, per Switch layer (gauge)
//   sy_trainer_expert_tokens_total           tokens routed, labels switch_layer, expert (counter)
//   sy_trainer_wire_bytes_total              bytes the trainers sent (counter; 0 standalone)
//   sy_trainer_step_seconds                  wall time of each step this trainer trained (histogram)
// Counters add replayed steps again after a rollback (work done, not progress).
//
// Thread-safe (Registry's metrics are atomic); the registry must outlive it.
//
//   metrics::Registry registry;
//   TrainerMetrics live(registry);
//   live.ObserveStepSeconds(0.21);
//   live.RecordStep(step_metrics);
#pragma once

#include <vector>

#include "common/metrics/registry.h"
#include "services/trainer/metrics_files.h"

namespace sy::trainer {

class TrainerMetrics {
 public:
  explicit TrainerMetrics(metrics::Registry& registry);

  // The wall time of one step this trainer trained.
  void ObserveStepSeconds(double seconds);
  // A step the leader recorded.
  void RecordStep(const StepMetrics& step);

 private:
  metrics::Registry& registry_;
  metrics::Gauge& step_;
  metrics::Gauge& loss_;
  metrics::Gauge& tokens_per_second_;
  metrics::Gauge& dropped_fraction_;
  metrics::Counter& wire_bytes_;
  metrics::Histogram& step_seconds_;
};

// The upper bounds of sy_trainer_step_seconds, in seconds.
std::vector<double> StepSecondsBuckets();

}  // namespace sy::trainer
