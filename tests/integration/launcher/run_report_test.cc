// Reading metrics.jsonl / summary.json into a RunReport and formatting it.
#include "orchestration/local/run_report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "orchestration/local/child_process.h"

namespace sy::local {
namespace {

class RunReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/run_report_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) { std::ofstream(dir_ + "/" + name) << text; }

  std::string dir_;
};

constexpr char kMetrics[] =
    "{\"step\":1,\"loss\":5.5,\"lb_loss\":0.01,\"z_loss\":0.001,\"tokens_per_s\":1000,\"dropped_frac\":0.1,"
    "\"expert_tokens\":[[3,1],[0,4]],\"bytes_sent\":100}\n"
    "{\"step\":2,\"loss\":4.5,\"lb_loss\":0.01,\"z_loss\":null,\"val_loss\":4.75,\"tokens_per_s\":3000,"
    "\"dropped_frac\":0,\"expert_tokens\":[[2,2],[1,3]],\"bytes_sent\":300}\n";
constexpr char kSummary[] =
    "{\"steps\":2,\"final_loss\":4.5,\"final_val_loss\":4.75,\"param_checksum\":\"00112233aabbccdd\","
    "\"median_tokens_per_s\":2000,\"hosts\":2,\"trainers\":3}\n";

TEST_F(RunReportTest, ReadsEveryField) {
  Write("metrics.jsonl", kMetrics);
  Write("summary.json", kSummary);
  absl::StatusOr<RunReport> r = ReadRunReport(dir_);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->steps.size(), 2u);
  EXPECT_EQ(r->steps[1].step, 2);
  EXPECT_DOUBLE_EQ(r->steps[0].loss, 5.5);
  EXPECT_FALSE(r->steps[0].val_loss.has_value());
  EXPECT_DOUBLE_EQ(*r->steps[1].val_loss, 4.75);
  EXPECT_EQ(r->steps[1].expert_tokens, (std::vector<std::vector<int64_t>>{{2, 2}, {1, 3}}));
  EXPECT_EQ(r->param_checksum, "00112233aabbccdd");
  EXPECT_EQ(*r->hosts, 2);
  EXPECT_EQ(*r->trainers, 3);
  EXPECT_DOUBLE_EQ(r->median_tokens_per_s, 2000);
  EXPECT_EQ(TotalExpertTokens(*r), (std::vector<std::vector<int64_t>>{{5, 3}, {1, 7}}));
  EXPECT_DOUBLE_EQ(*MeanBytesSentPerStep(*r), 200);
  EXPECT_DOUBLE_EQ(MeanDroppedFraction(*r), 0.05);
  EXPECT_DOUBLE_EQ(MeanLossOfFirst(*r, 1), 5.5);
  EXPECT_DOUBLE_EQ(MeanLossOfLast(*r, 5), 5.0);
  const std::string text = FormatRunReport(*r);
  for (const char* part : {"2 hosts x 3 trainers", "5.5000 (step 1) -> 4.5000 (step 2)", "4.7500 (step 2)",
                           "00112233aabbccdd", "2000", "200 bytes sent per step", "10.0% of routed tokens over capacity (step 1) -> 0.0% (step 2); mean 5.0%", "62.5%", "87.5%"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << " in\n" << text;
  }
}

TEST_F(RunReportTest, StandaloneHasNoWireOrClusterShape) {
  Write("metrics.jsonl", "{\"step\":1,\"loss\":5,\"tokens_per_s\":10,\"dropped_frac\":0,\"expert_tokens\":[]}\n");
  Write("summary.json", "{\"steps\":1,\"final_loss\":5,\"final_val_loss\":null,\"param_checksum\":\"ab\","
                        "\"median_tokens_per_s\":10}");
  absl::StatusOr<RunReport> r = ReadRunReport(dir_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->hosts.has_value());
  EXPECT_FALSE(r->final_val_loss.has_value());
  EXPECT_FALSE(MeanBytesSentPerStep(*r).has_value());
  EXPECT_NE(FormatRunReport(*r).find("standalone"), std::string::npos);
}

TEST_F(RunReportTest, ReplicaCheckIsReadAndPrintedWhenExpertsWereReplicated) {
  Write("metrics.jsonl", kMetrics);
  Write("summary.json", kSummary);
  absl::StatusOr<RunReport> r = ReadRunReport(dir_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->replicated_actors.has_value()) << "absent in runs written before the replica check";
  EXPECT_EQ(FormatRunReport(*r).find("replica"), std::string::npos);

  // kSummary with `fields` added at the end of its object.
  auto summary_with = [](const std::string& fields) {
    std::string text = kSummary;
    return text.insert(text.rfind('}'), fields);
  };
  Write("summary.json", summary_with(",\"replicated_actors\":3,\"replica_mismatches\":1"));
  r = ReadRunReport(dir_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->replicated_actors, std::optional<int>(3));
  EXPECT_EQ(r->replica_mismatches, std::optional<int>(1));
  std::string text = FormatRunReport(*r);
  EXPECT_NE(text.find("3 replicated experts at the end; 1 with replicas that DIFFER"), std::string::npos) << text;

  r->replica_mismatches = 0;
  text = FormatRunReport(*r);
  EXPECT_NE(text.find("every replica identical"), std::string::npos) << text;
  r->replicated_actors = 0;  // a distributed run that replicated nothing prints no replica line
  EXPECT_EQ(FormatRunReport(*r).find("replica"), std::string::npos);

  Write("summary.json", summary_with(",\"replicated_actors\":3"));
  absl::Status one = ReadRunReport(dir_).status();
  EXPECT_EQ(one.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(one.message().find("replica_mismatches"), std::string::npos) << one;
  Write("summary.json", summary_with(",\"replicated_actors\":\"many\",\"replica_mismatches\":0"));
  EXPECT_EQ(ReadRunReport(dir_).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(RunReportTest, TheClusterRecordAddedToTheSummaryReadsBack) {
  Write("metrics.jsonl", kMetrics);
  Write("summary.json", kSummary);
  ClusterRecord record;
  record.counts = ClusterCounts{1, 3, 2, 0};
  record.max_over_mean_host_load = HostLoadRatios{1.25, 1.0625};
  record.host_cpu_seconds = {{"host-0", 2.5}, {"host-1", 0.75}};
  ASSERT_TRUE(AddClusterRecordToSummary(dir_ + "/summary.json", record).ok());
  absl::StatusOr<RunReport> r = ReadRunReport(dir_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->param_checksum, "00112233aabbccdd");  // the trainer's fields are kept
  ASSERT_TRUE(r->cluster.has_value());
  ASSERT_TRUE(r->cluster->counts.has_value());
  EXPECT_EQ(r->cluster->counts->recoveries, 1u);
  EXPECT_EQ(r->cluster->counts->checkpoints, 3u);
  EXPECT_EQ(r->cluster->counts->migrations, 2u);
  EXPECT_EQ(r->cluster->counts->replications, 0u);
  ASSERT_TRUE(r->cluster->max_over_mean_host_load.has_value());
  EXPECT_EQ(r->cluster->max_over_mean_host_load->first_10_steps, 1.25);
  EXPECT_EQ(r->cluster->max_over_mean_host_load->last_10_steps, 1.0625);
  EXPECT_EQ(r->cluster->host_cpu_seconds, record.host_cpu_seconds);
  EXPECT_TRUE(r->cluster->missing.empty());

  // A part the coordinator could not tell is absent, and "missing" says why; it reads back so.
  record.counts.reset();
  record.missing = {{"status", "UNAVAILABLE: down"}};
  Write("summary.json", kSummary);
  ASSERT_TRUE(AddClusterRecordToSummary(dir_ + "/summary.json", record).ok());
  r = ReadRunReport(dir_);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->cluster.has_value());
  EXPECT_FALSE(r->cluster->counts.has_value());
  EXPECT_TRUE(r->cluster->max_over_mean_host_load.has_value());
  EXPECT_EQ(r->cluster->missing, record.missing);

  std::string partial = kSummary;
  Write("summary.json", partial.insert(partial.rfind('}'), ",\"recoveries\":0"));
  EXPECT_EQ(ReadRunReport(dir_).status().code(), absl::StatusCode::kDataLoss);
  Write("summary.json", "[]");
  EXPECT_EQ(AddClusterRecordToSummary(dir_ + "/summary.json", record).code(), absl::StatusCode::kDataLoss);
}

TEST_F(RunReportTest, MissingOrBrokenFilesAreErrors) {
  EXPECT_EQ(ReadRunReport(dir_).status().code(), absl::StatusCode::kNotFound);
  Write("metrics.jsonl", kMetrics);
  EXPECT_EQ(ReadRunReport(dir_).status().code(), absl::StatusCode::kNotFound);  // no summary yet
  Write("summary.json", "{\"steps\":2,");
  EXPECT_EQ(ReadRunReport(dir_).status().code(), absl::StatusCode::kDataLoss);
  Write("summary.json", "{\"steps\":2,\"final_loss\":4.5,\"median_tokens_per_s\":1}");  // no checksum
  EXPECT_NE(ReadRunReport(dir_).status().message().find("param_checksum"), std::string::npos);
  Write("summary.json", kSummary);
  Write("metrics.jsonl", "{\"step\":1,\"loss\":\"high\",\"tokens_per_s\":1,\"dropped_frac\":0,\"expert_tokens\":[]}\n");
  absl::Status s = ReadRunReport(dir_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("metrics.jsonl:1"), std::string::npos) << s;
  EXPECT_NE(s.message().find("\"loss\""), std::string::npos) << s;
  Write("metrics.jsonl", "{\"step\":1,\"loss\":1,\"tokens_per_s\":1,\"dropped_frac\":0,\"expert_tokens\":[[1,\"x\"]]}\n");
  EXPECT_EQ(ReadRunReport(dir_).status().code(), absl::StatusCode::kDataLoss);
  Write("metrics.jsonl", "{\"step\":1,\"loss\":1,\"tokens_per_s\":1,\"expert_tokens\":[]}\n");  // no dropped_frac
  EXPECT_EQ(ReadRunReport(dir_).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(RunReportTest, TailOfFileKeepsTheLastLines) {
  Write("log", "one\ntwo\nthree\nfour\n");
  EXPECT_EQ(TailOfFile(dir_ + "/log", 2), "three\nfour");
  EXPECT_EQ(TailOfFile(dir_ + "/log", 10), "one\ntwo\nthree\nfour");
  Write("log", "no newline");
  EXPECT_EQ(TailOfFile(dir_ + "/log", 3), "no newline");
  EXPECT_EQ(TailOfFile(dir_ + "/missing", 3), "");
}

}  // namespace
}  // namespace sy::local
