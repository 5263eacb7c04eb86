// What sy-local asks the coordinator at the end of a run (coordinator_control.h): a
// query that fails costs only its own facts. GatherClusterFacts names each failed query;
// AddClusterFactsToSummary leaves out what those would have told and says why in
// summary.json's "missing", so a finished run still gets its summary.
#include "orchestration/local/coordinator_control.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace sy::local {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class SummaryFactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = absl::StrCat(::testing::TempDir(), "/summary_facts_", getpid(), ".json");
    std::ofstream(path_) << "{\"steps\":900,\"final_loss\":2.5}\n";
    facts_.recoveries = 1;
    facts_.checkpoints = 18;
  }
  void TearDown() override { std::filesystem::remove(path_); }

  std::string Summary() const {
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  nlohmann::json SummaryJson() const { return nlohmann::json::parse(Summary()); }

  std::string path_;
  ClusterFacts facts_;
};

TEST_F(SummaryFactsTest, CompleteFactsAddEveryFieldAndNoMissing) {
  ASSERT_TRUE(AddClusterFactsToSummary(path_, facts_, 1.5, 1.25, {{"host-0", 2.0}}).ok());
  EXPECT_EQ(SummaryJson(), nlohmann::json::parse(R"({"steps":900,"final_loss":2.5,"recoveries":1,"checkpoints":18,
      "migrations":0,"replications":0,"max_over_mean_host_load":{"first_10_steps":1.5,"last_10_steps":1.25},
      "host_cpu_seconds":{"host-0":2.0}})"));
  EXPECT_THAT(Summary(), Not(HasSubstr("missing")));
}

TEST_F(SummaryFactsTest, TheHostLoadSeriesAndTheCheckpointStepsAreWrittenForTheReport) {
  facts_.step_host_tokens = {{1, {{"host-0", 30.0}, {"host-1", 10.0}}}, {2, {{"host-0", 20.0}}}};
  facts_.step_epoch = {{1, 1}, {2, 3}};
  facts_.checkpoint_steps = std::vector<uint64_t>{10, 20};
  ASSERT_TRUE(AddClusterFactsToSummary(path_, facts_, 1.5, 1.25, {}).ok());
  EXPECT_EQ(SummaryJson()["host_load_per_step"], nlohmann::json::parse(R"([
      {"step":1,"epoch":1,"tokens":{"host-0":30.0,"host-1":10.0}},{"step":2,"epoch":3,"tokens":{"host-0":20.0}}])"));
  EXPECT_EQ(SummaryJson()["checkpoint_steps"], nlohmann::json::parse("[10,20]"));
}

TEST_F(SummaryFactsTest, AFailedQueryLeavesOutOnlyItsFactsAndSaysWhy) {
  facts_.missing.push_back({kHostLoadSeriesQuery, absl::DeadlineExceededError("no reply \"before\" the deadline")});
  ASSERT_TRUE(AddClusterFactsToSummary(path_, facts_, 1.5, 1.25, {{"host-0", 2.0}}).ok());
  const std::string summary = Summary();
  EXPECT_THAT(summary, HasSubstr("\"recoveries\":1,\"checkpoints\":18,"));
  EXPECT_THAT(summary, Not(HasSubstr("max_over_mean_host_load")));
  EXPECT_EQ(SummaryJson()["host_cpu_seconds"], nlohmann::json::parse(R"({"host-0":2.0})"));
  EXPECT_EQ(SummaryJson()["missing"],
            nlohmann::json::parse(R"({"hostLoadSeries":"DEADLINE_EXCEEDED: no reply \"before\" the deadline"})"));

  std::ofstream(path_) << "{\"steps\":900}\n";
  facts_.missing = {{kStatusQuery, absl::UnavailableError("down")}};
  ASSERT_TRUE(AddClusterFactsToSummary(path_, facts_, 1.5, 1.25, {}).ok());
  EXPECT_THAT(Summary(), Not(HasSubstr("recoveries")));
  EXPECT_THAT(Summary(), HasSubstr("\"max_over_mean_host_load\":"));
  EXPECT_EQ(SummaryJson()["missing"], nlohmann::json::parse(R"({"status":"UNAVAILABLE: down"})"));
}

TEST(GatherClusterFactsTest, ACoordinatorThatDoesNotAnswerIsNamedForEveryQuery) {
  const ClusterFacts facts = GatherClusterFacts("tcp://127.0.0.1:9", absl::Milliseconds(300), {});
  ASSERT_EQ(facts.missing.size(), 3u);
  EXPECT_EQ(facts.missing[0].query, kStatusQuery);
  EXPECT_EQ(facts.missing[1].query, kExpertsQuery);
  EXPECT_EQ(facts.missing[2].query, kHostLoadSeriesQuery);
  for (const MissingFact& m : facts.missing) EXPECT_EQ(m.error.code(), absl::StatusCode::kDeadlineExceeded);
  const absl::StatusOr<ClusterFacts> strict = QueryClusterFacts("tcp://127.0.0.1:9", absl::Milliseconds(300), {});
  EXPECT_EQ(strict.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(strict.status().message()), HasSubstr("status: "));
}

}  // namespace
}  // namespace sy::local
