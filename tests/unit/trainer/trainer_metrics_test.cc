// Tests for TrainerMetrics: the names, labels and values a recorded step leaves in
// the trainer's /metrics text, and the step-time histogram in Prometheus text format.
#include "services/trainer/trainer_metrics.h"

#include <gtest/gtest.h>

#include <string>

#include "common/metrics/registry.h"

namespace sy::trainer {
namespace {

bool Has(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }

TEST(TrainerMetricsTest, RecordedStepSetsGaugesAndAddsCounters) {
  metrics::Registry registry;
  TrainerMetrics live(registry);
  StepMetrics step;
  step.step = 7;
  step.loss = 2.5;
  step.tokens_per_s = 1500;
  step.dropped_frac = 0.125;
  step.switch_layer_dropped_frac = {0.25, 0};
  step.expert_tokens = {{10, 20}, {30, 0}};
  step.bytes_sent = 4096;
  live.RecordStep(step);
  step.step = 8;
  step.loss = 2.0;
  live.RecordStep(step);

  const std::string text = registry.RenderPrometheus();
  EXPECT_TRUE(Has(text, "# TYPE sy_trainer_loss gauge\nsy_trainer_loss 2\n")) << text;
  EXPECT_TRUE(Has(text, "sy_trainer_step 8\n")) << text;
  EXPECT_TRUE(Has(text, "sy_trainer_tokens_per_second 1500\n")) << text;
  EXPECT_TRUE(Has(text, "sy_trainer_dropped_fraction 0.125\n")) << text;
  EXPECT_TRUE(Has(text, "sy_trainer_dropped_fraction{switch_layer=\"0\"} 0.25\n")) << text;
  EXPECT_TRUE(Has(text, "sy_trainer_dropped_fraction{switch_layer=\"1\"} 0\n")) << text;
  EXPECT_TRUE(Has(text, "# TYPE sy_trainer_expert_tokens_total counter\n")) << text;
  EXPECT_TRUE(Has(text, "sy_trainer_expert_tokens_total{expert=\"1\",switch_layer=\"0\"} 40\n")) << text;
  EXPECT_TRUE(Has(text, "sy_trainer_expert_tokens_total{expert=\"0\",switch_layer=\"1\"} 60\n")) << text;
  EXPECT_TRUE(Has(text, "sy_trainer_wire_bytes_total 8192\n")) << text;
}

TEST(TrainerMetricsTest, StepSecondsIsAPrometheusHistogram) {
  metrics::Registry registry;
  TrainerMetrics live(registry);
  for (double seconds : {0.02, 0.3, 0.3, 200.0}) live.ObserveStepSeconds(seconds);

  const std::string text = registry.RenderPrometheus();
  EXPECT_TRUE(Has(text, "# TYPE sy_trainer_step_seconds histogram\n")) << text;
  EXPECT_TRUE(Has(text,
                  "sy_trainer_step_seconds_bucket{le=\"0.01\"} 0\n"
                  "sy_trainer_step_seconds_bucket{le=\"0.025\"} 1\n"))
      << text;
  EXPECT_TRUE(Has(text,
                  "sy_trainer_step_seconds_bucket{le=\"0.25\"} 1\n"
                  "sy_trainer_step_seconds_bucket{le=\"0.5\"} 3\n"))
      << text;
  EXPECT_TRUE(Has(text,
                  "sy_trainer_step_seconds_bucket{le=\"120\"} 3\n"
                  "sy_trainer_step_seconds_bucket{le=\"+Inf\"} 4\n"
                  "sy_trainer_step_seconds_sum 200.62\n"
                  "sy_trainer_step_seconds_count 4\n"))
      << text;
  // A standalone run's leader sends nothing: the counter is there, at 0.
  EXPECT_TRUE(Has(text, "sy_trainer_wire_bytes_total 0\n")) << text;
}

}  // namespace
}  // namespace sy::trainer
