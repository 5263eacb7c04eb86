// The shared training loop with a scripted TrainerRole: steps in order with
// validation and records, a rollback that replays steps, a step applied before its
// failure that is recorded instead of replayed, leaving the run, a failure nothing
// recovers, a trainer that does not lead; and SumMicroBatches.
#include "services/trainer/training_loop.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sy::trainer {
namespace {

// Trains instantly; validation loss 10 + step. `turns[k]`: what NextTurn answers once
// step k is done; `fail_after_apply`: steps whose TrainStep applies, then fails once.
class ScriptedRole : public TrainerRole {
 public:
  bool is_leader = true;
  std::map<int64_t, LoopTurn> turns;
  std::map<int64_t, int> fail_after_apply;
  bool recovers = true;
  std::vector<int64_t> trained;

  bool leader() const override { return is_leader; }
  absl::StatusOr<LoopTurn> NextTurn(RunRecords& records) override {
    LoopTurn turn = next_;
    next_ = LoopTurn{};
    if (turn.kind == LoopTurn::kReplay) {
      if (absl::Status s = records.DropAfter(turn.step); !s.ok()) return s;
    }
    return turn;
  }
  absl::Status TrainStep(int64_t step, std::optional<AppliedStep>* applied) override {
    trained.push_back(step);
    if (is_leader) {
      applied->emplace();
      (*applied)->metrics.step = step;
      (*applied)->metrics.loss = 1.0 / step;
      (*applied)->tokens = 100;
    }
    if (fail_after_apply[step]-- > 0) {
      next_ = LoopTurn{LoopTurn::kReplay, step};
      return absl::UnavailableError("host lost");
    }
    return absl::OkStatus();
  }
  void StepDone(int64_t step) override {
    auto it = turns.find(step);
    if (it == turns.end()) return;
    next_ = it->second;
    turns.erase(it);
  }
  absl::StatusOr<double> Validate(int64_t step) override { return 10.0 + step; }
  absl::StatusOr<std::string> FinalChecksum(RunResult*) override { return std::string("00112233aabbccdd"); }
  absl::Status AwaitRecovery(int64_t, const absl::Status& failure) override {
    return recovers ? absl::OkStatus() : failure;
  }
  RunShape shape() const override { return {2, 3}; }

 private:
  LoopTurn next_;
};

class TrainingLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.steps = 5;
    options_.eval_every = 2;
    options_.workdir = ::testing::TempDir() + "/training_loop_" +
                       ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(options_.workdir);
  }

  absl::StatusOr<RunResult> Run(ScriptedRole& role) {
    absl::StatusOr<RunRecords> records = RunRecords::Open(options_, role.leader(), progress_);
    if (!records.ok()) return records.status();
    return RunTraining(options_, role, *records, 1);
  }

  // The steps of metrics.jsonl, in file order.
  std::vector<int64_t> MetricsSteps() const {
    std::ifstream in(options_.workdir + "/metrics.jsonl");
    std::vector<int64_t> steps;
    for (std::string line; std::getline(in, line);) steps.push_back(std::stoll(line.substr(8)));
    return steps;
  }

  cluster::TrainerOptions options_;
  std::ostringstream progress_;
};

TEST_F(TrainingLoopTest, TrainsValidatesRecordsAndSummarises) {
  ScriptedRole role;
  absl::StatusOr<RunResult> r = Run(role);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(role.trained, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(r->steps, 5);
  EXPECT_EQ(r->val_curve, (std::vector<std::pair<int64_t, double>>{{2, 12}, {4, 14}, {5, 15}}));
  EXPECT_EQ(r->final_val_loss, 15);
  EXPECT_DOUBLE_EQ(r->final_loss, 0.2);
  EXPECT_EQ(r->param_checksum, "00112233aabbccdd");
  EXPECT_GT(r->median_tokens_per_s, 0);
  EXPECT_EQ(MetricsSteps(), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_NE(progress_.str().find("step 5/5 | loss 0.2000 | val 15.0000"), std::string::npos) << progress_.str();
  EXPECT_NE(progress_.str().find("param_checksum 00112233aabbccdd\n"), std::string::npos);
  std::ifstream summary(options_.workdir + "/summary.json");
  std::string text((std::istreambuf_iterator<char>(summary)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"hosts\":2,\"trainers\":3,\"replayed_steps\":0,\"recovery_seconds\":[]}\n"), std::string::npos) << text;
}

TEST_F(TrainingLoopTest, ARollbackReplaysTheLaterStepsAndKeepsOneRecordPerStep) {
  ScriptedRole role;
  role.turns[4] = {LoopTurn::kReplay, 2};
  absl::StatusOr<RunResult> r = Run(role);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(role.trained, (std::vector<int64_t>{1, 2, 3, 4, 3, 4, 5}));
  EXPECT_EQ(MetricsSteps(), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(r->val_curve.size(), 3u);
}

TEST_F(TrainingLoopTest, AStepAppliedBeforeItsFailureIsRecordedNotReplayed) {
  ScriptedRole role;
  role.fail_after_apply[3] = 1;  // the rollback that follows goes back to step 3 itself
  absl::StatusOr<RunResult> r = Run(role);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(role.trained, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(MetricsSteps(), (std::vector<int64_t>{1, 2, 3, 4, 5}));
}

TEST_F(TrainingLoopTest, ATrainerLeftOutEndsAtTheRollbackStepWithoutSummary) {
  ScriptedRole role;
  role.turns[3] = {LoopTurn::kLeave, 2};
  absl::StatusOr<RunResult> r = Run(role);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps, 2);
  EXPECT_FALSE(std::filesystem::exists(options_.workdir + "/summary.json"));
}

TEST_F(TrainingLoopTest, AFailureNothingRecoversEndsTheRun) {
  ScriptedRole role;
  role.fail_after_apply[2] = 1;
  role.recovers = false;
  EXPECT_EQ(Run(role).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(role.trained, (std::vector<int64_t>{1, 2}));
}

TEST_F(TrainingLoopTest, OnlyTheLeaderKeepsRecords) {
  ScriptedRole role;
  role.is_leader = false;
  absl::StatusOr<RunResult> r = Run(role);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps, 5);
  EXPECT_TRUE(r->param_checksum.empty());
  EXPECT_EQ(progress_.str(), "");
  EXPECT_FALSE(std::filesystem::exists(options_.workdir));
}

TEST(SumMicroBatchesTest, MeansTheLossesAndSumsTokensAndExperts) {
  cluster::MicroBatchStatsValue a, b;
  a.loss = 2;
  a.lb = 0.5;
  a.z = 0.25;
  a.tokens = 10;
  a.dropped_tokens = 4;
  a.expert_counts = {{6, 4}, {10, 0}};
  b = a;
  b.loss = 4;
  b.expert_counts = {{1, 9}, {5, 5}};
  const AppliedStep s = SumMicroBatches(7, {a, b}, 2);
  EXPECT_EQ(s.metrics.step, 7);
  EXPECT_DOUBLE_EQ(s.metrics.loss, 3);
  EXPECT_DOUBLE_EQ(s.metrics.lb_loss, 0.5);
  EXPECT_DOUBLE_EQ(s.metrics.z_loss, 0.25);
  EXPECT_EQ(s.tokens, 20);
  EXPECT_EQ(s.metrics.expert_tokens, (std::vector<std::vector<int64_t>>{{7, 13}, {15, 5}}));
  EXPECT_DOUBLE_EQ(s.metrics.dropped_frac, 8.0 / (20 * 2));  // dropped over tokens x Switch layers
  EXPECT_FALSE(s.metrics.bytes_sent.has_value());
}

TEST(SumMicroBatchesTest, DroppedFractionOfEachSwitchLayer) {
  cluster::MicroBatchStatsValue a, b;
  a.tokens = b.tokens = 10;
  a.dropped_tokens = 4;
  a.switch_layer_dropped_tokens = {3, 1};
  b.dropped_tokens = 2;
  b.switch_layer_dropped_tokens = {0, 2};
  a.expert_counts = b.expert_counts = {{5, 5}, {5, 5}};
  const AppliedStep s = SumMicroBatches(1, {a, b}, 2);
  EXPECT_EQ(s.metrics.switch_layer_dropped_frac, (std::vector<double>{3.0 / 20, 3.0 / 20}));
  EXPECT_DOUBLE_EQ(s.metrics.dropped_frac, 6.0 / 40);
}

}  // namespace
}  // namespace sy::trainer
