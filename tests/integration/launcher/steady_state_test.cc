// Picking a run's balanced steps for the end-to-end benchmarks (steady_state.h).
#include "orchestration/local/steady_state.h"

#include <gtest/gtest.h>

namespace sy::local {
namespace {

StepRecord Step(int64_t step, double tokens_per_s, double dropped, std::optional<int64_t> bytes) {
  StepRecord r;
  r.step = step;
  r.tokens_per_s = tokens_per_s;
  r.dropped_frac = dropped;
  r.bytes_sent = bytes;
  return r;
}

TEST(SteadyStateTest, CountsOnlyTheStepsUnderTheBound) {
  RunReport report;
  report.steps = {Step(1, 100, 0.30, 900), Step(2, 500, 0.04, 100), Step(3, 300, 0.20, 800),
                  Step(4, 400, 0.02, 300), Step(5, 200, 0.00, std::nullopt), Step(6, 900, 0.05, 700)};
  absl::StatusOr<SteadyState> s = MeasureSteadyState(report, 0.05, 3);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->steps, 3);  // 2, 4, 5; step 6 is at the bound, not under it
  EXPECT_EQ(s->first_step, 2);
  EXPECT_EQ(s->last_step, 5);
  EXPECT_DOUBLE_EQ(s->median_tokens_per_s, 400);
  EXPECT_DOUBLE_EQ(s->mean_dropped_frac, 0.02);
  ASSERT_TRUE(s->bytes_sent_per_step.has_value());
  EXPECT_DOUBLE_EQ(*s->bytes_sent_per_step, 200);  // step 5 reports no bytes
}

TEST(SteadyStateTest, AnUnbalancedRunIsRefusedWithHowFarItGot) {
  RunReport report;
  report.steps = {Step(1, 100, 0.30, std::nullopt), Step(2, 100, 0.01, std::nullopt), Step(3, 100, 0.12, std::nullopt)};
  absl::StatusOr<SteadyState> s = MeasureSteadyState(report, 0.05, 2);
  ASSERT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("only 1 of 3 steps"), std::string::npos) << s.status();
  EXPECT_NE(s.status().message().find("the last step dropped 12.0%"), std::string::npos) << s.status();
  EXPECT_FALSE(MeasureSteadyState(RunReport{}, 0.05, 0).ok());  // nothing to measure
  s = MeasureSteadyState(report, 0.05, 1);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->bytes_sent_per_step.has_value());
}

}  // namespace
}  // namespace sy::local
