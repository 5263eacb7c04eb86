// Tests of the progress line and the metrics.jsonl / summary.json formats.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "services/trainer/metrics_files.h"
#include "services/trainer/progress.h"

namespace sy::trainer {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ProgressTest, LineHasStepLossValThroughputAndEta) {
  ProgressInfo info{10, 40, 2.345678, 2.5, 15234.4, 20.0};
  EXPECT_EQ(FormatProgressLine(info), "step 10/40 | loss 2.3457 | val 2.5000 | 15234 tok/s | ETA 1m00s");
  info.val_loss.reset();
  info.step = 40;
  EXPECT_EQ(FormatProgressLine(info), "step 40/40 | loss 2.3457 | 15234 tok/s | ETA 0s");
}

TEST(ProgressTest, Durations) {
  EXPECT_EQ(FormatDuration(45.2), "45s");
  EXPECT_EQ(FormatDuration(250), "4m10s");
  EXPECT_EQ(FormatDuration(3723), "1h02m03s");
  EXPECT_EQ(FormatDuration(-1), "?");
  EXPECT_EQ(FormatDuration(NAN), "?");
}

TEST(MetricsFilesTest, StepJsonExactFormat) {
  StepMetrics m;
  m.step = 3;
  m.loss = 2.5;
  m.lb_loss = 0.0125;
  m.z_loss = 1e-5;
  m.tokens_per_s = 1000;
  m.dropped_frac = 0.25;
  m.expert_tokens = {{1, 2}, {3, 0}};
  EXPECT_EQ(StepMetricsJson(m),
            "{\"step\":3,\"loss\":2.5,\"lb_loss\":0.0125,\"z_loss\":1e-05,\"tokens_per_s\":1000,"
            "\"dropped_frac\":0.25,\"expert_tokens\":[[1,2],[3,0]]}");
  m.val_loss = 2.75;
  m.loss = INFINITY;
  m.bytes_sent = 4096;
  EXPECT_EQ(StepMetricsJson(m),
            "{\"step\":3,\"loss\":null,\"lb_loss\":0.0125,\"z_loss\":1e-05,\"val_loss\":2.75,\"tokens_per_s\":1000,"
            "\"dropped_frac\":0.25,\"expert_tokens\":[[1,2],[3,0]],\"bytes_sent\":4096}");
}

TEST(MetricsFilesTest, StepJsonEndsWithTheDroppedFractionOfEachSwitchLayer) {
  StepMetrics m;
  m.step = 4;
  m.dropped_frac = 0.25;
  m.expert_tokens = {{1, 2}, {3, 0}};
  m.switch_layer_dropped_frac = {0.5, 0};
  EXPECT_EQ(StepMetricsJson(m),
            "{\"step\":4,\"loss\":0,\"lb_loss\":0,\"z_loss\":0,\"tokens_per_s\":0,"
            "\"dropped_frac\":0.25,\"expert_tokens\":[[1,2],[3,0]],\"switch_layer_dropped_frac\":[0.5,0]}");
}

TEST(MetricsFilesTest, WriterAppendsOneLinePerStep) {
  const std::string path = ::testing::TempDir() + "/metrics_test.jsonl";
  absl::StatusOr<std::unique_ptr<MetricsWriter>> w = MetricsWriter::Create(path);
  ASSERT_TRUE(w.ok()) << w.status();
  StepMetrics m;
  for (int s = 1; s <= 3; ++s) {
    m.step = s;
    ASSERT_TRUE((*w)->Append(m).ok());
  }
  const std::string text = ReadAll(path);  // flushed after each line, before the writer closes
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  EXPECT_EQ(text.rfind("{\"step\":1,", 0), 0u);
  EXPECT_NE(text.find("\n{\"step\":3,"), std::string::npos);
}

TEST(MetricsFilesTest, ANewLeaderAdoptsTheRecordsUpToTheRestoredStep) {
  const std::string path = ::testing::TempDir() + "/adopted.jsonl";
  {
    absl::StatusOr<std::unique_ptr<MetricsWriter>> old_leader = MetricsWriter::Create(path);
    ASSERT_TRUE(old_leader.ok());
    StepMetrics m;
    for (int s = 1; s <= 5; ++s) {
      m.step = s;
      m.tokens_per_s = 100.0 * s;
      ASSERT_TRUE((*old_leader)->Append(m).ok());
    }
  }
  std::map<int64_t, double> rates;
  absl::StatusOr<std::unique_ptr<MetricsWriter>> adopted = MetricsWriter::Adopt(path, 3, &rates);
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  EXPECT_EQ(rates, (std::map<int64_t, double>{{1, 100}, {2, 200}, {3, 300}}));
  StepMetrics replayed;
  replayed.step = 4;
  ASSERT_TRUE((*adopted)->Append(replayed).ok());
  const std::string text = ReadAll(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4);
  EXPECT_NE(text.find("\n{\"step\":3,"), std::string::npos);
  EXPECT_NE(text.find("\n{\"step\":4,\"loss\":0,"), std::string::npos);
  EXPECT_EQ(text.find("\"tokens_per_s\":500"), std::string::npos);  // step 5 was dropped
  // A leader that died before writing anything: the new one starts the file.
  EXPECT_TRUE(MetricsWriter::Adopt(::testing::TempDir() + "/never_written.jsonl", 2, nullptr).ok());
  // A line that is not a step record: refused, the file left as it was.
  { std::ofstream(path, std::ios::app) << "garbage\n"; }
  const std::string before = ReadAll(path);
  EXPECT_EQ(MetricsWriter::Adopt(path, 3, nullptr).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ReadAll(path), before);
}

TEST(MetricsFilesTest, UncreatableFilesAreFailedPrecondition) {
  EXPECT_EQ(MetricsWriter::Create("/nonexistent/dir/metrics.jsonl").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(WriteRunSummary("/nonexistent/dir/summary.json", {}).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(MetricsFilesTest, SummaryJson) {
  RunSummary s;
  s.steps = 30;
  s.final_loss = 1.5;
  s.param_checksum = "00112233aabbccdd";
  s.median_tokens_per_s = 12345.5;
  EXPECT_EQ(RunSummaryJson(s),
            "{\"steps\":30,\"final_loss\":1.5,\"final_val_loss\":null,\"param_checksum\":\"00112233aabbccdd\","
            "\"median_tokens_per_s\":12345.5,\"replayed_steps\":0,\"recovery_seconds\":[]}");
  s.final_val_loss = 1.75;
  s.hosts = 2;
  s.trainers = 3;
  const std::string path = ::testing::TempDir() + "/summary_test.json";
  ASSERT_TRUE(WriteRunSummary(path, s).ok());
  EXPECT_EQ(ReadAll(path),
            "{\"steps\":30,\"final_loss\":1.5,\"final_val_loss\":1.75,\"param_checksum\":\"00112233aabbccdd\","
            "\"median_tokens_per_s\":12345.5,\"hosts\":2,\"trainers\":3,\"replayed_steps\":0,\"recovery_seconds\":[]}\n");
  s.replicated_actors = 2;
  s.replica_mismatches = 0;
  EXPECT_EQ(RunSummaryJson(s),
            "{\"steps\":30,\"final_loss\":1.5,\"final_val_loss\":1.75,\"param_checksum\":\"00112233aabbccdd\","
            "\"median_tokens_per_s\":12345.5,\"hosts\":2,\"trainers\":3,\"replicated_actors\":2,"
            "\"replica_mismatches\":0,\"replayed_steps\":0,\"recovery_seconds\":[]}");
  s.rollbacks = {{25, 20}, {33, 30}};
  EXPECT_EQ(RunSummaryJson(s),
            "{\"steps\":30,\"final_loss\":1.5,\"final_val_loss\":1.75,\"param_checksum\":\"00112233aabbccdd\","
            "\"median_tokens_per_s\":12345.5,\"hosts\":2,\"trainers\":3,\"replicated_actors\":2,"
            "\"replica_mismatches\":0,\"rollbacks\":[{\"reached_step\":25,\"to_step\":20},"
            "{\"reached_step\":33,\"to_step\":30}],\"replayed_steps\":8,\"recovery_seconds\":[]}");
  s.recovery_seconds = {0.25, 1.5};
  EXPECT_NE(RunSummaryJson(s).find("\"replayed_steps\":8,\"recovery_seconds\":[0.25,1.5]}"), std::string::npos);
}

TEST(MetricsFilesTest, Median) {
  EXPECT_EQ(Median({}), 0);
  EXPECT_EQ(Median({3, 1, 2}), 2);
  EXPECT_EQ(Median({4, 1, 3, 2}), 2.5);
}

}  // namespace
}  // namespace sy::trainer
