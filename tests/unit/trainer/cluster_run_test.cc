// Real processes on loopback: sy-expert-host and distributed sy-trainer give
// exactly the parameter checksum of `sy-trainer --standalone` with the same
// seed and flags, with f32 and bf16 on the wire, whatever the numbers of hosts
// and trainers; the leader writes metrics.jsonl and summary.json; loss falls.
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/unit/trainer/cluster_processes.h"

namespace sy::trainer::testing {
namespace {

// A tiny Switch model: a run of 6 steps takes about a second.
std::string Flags(const std::string& corpus, const std::string& wire) {
  return absl::StrCat("--data=", corpus,
                      " --steps=6 --layers=2 --d_model=32 --heads=2 --d_ff=64 --experts=4 --moe_every=1"
                      " --context=16 --micro_batch=4 --micro_batches=3 --warmup=2 --lr=0.01 --eval_every=3"
                      " --eval_batches=2 --threads=1 --log_level=warning --wire_dtype=",
                      wire);
}

std::string Corpus() {
  const std::string path = ::testing::TempDir() + "/cluster_corpus.txt";
  std::string text;
  const char* words[] = {"the ", "quick ", "brown ", "fox ", "jumps ", "over ", "a ", "lazy ", "dog. "};
  uint32_t x = 12345;
  while (text.size() < 60000) {
    x = x * 1103515245u + 12345u;
    text += words[(x >> 16) % 9];
  }
  FILE* f = fopen(path.c_str(), "w");
  fwrite(text.data(), 1, text.size(), f);
  fclose(f);
  return path;
}

std::string ChecksumIn(const std::string& summary_json) {
  const std::string key = "\"param_checksum\":\"";
  const size_t at = summary_json.find(key);
  return at == std::string::npos ? "" : summary_json.substr(at + key.size(), 16);
}

std::string Standalone(const std::string& flags, const std::string& dir) {
  std::vector<std::string> argv = {SY_TRAINER_BINARY, "--standalone", "--workdir=" + dir};
  for (const std::string& f : Split(flags)) argv.push_back(f);
  std::filesystem::create_directories(dir);
  const pid_t pid = Spawn(argv, dir + "/standalone.log");
  EXPECT_EQ(WaitExit(pid), 0) << ReadFile(dir + "/standalone.log");
  return ChecksumIn(ReadFile(dir + "/summary.json"));
}

// Runs H hosts x T trainers; returns trainer 0's summary.json. `faults` (a
// --faults spec) is given to every process.
std::string Cluster(const std::string& flags, const std::string& dir, int hosts, int trainers,
                    const std::string& faults = "") {
  LocalCluster cluster(dir, flags);
  const std::string fault_flag = faults.empty() ? "" : "--faults=" + faults;
  EXPECT_TRUE(cluster.StartHosts(hosts, fault_flag)) << cluster.error();
  std::vector<pid_t> pids;
  for (int t = 0; t < trainers; ++t) {
    pids.push_back(cluster.StartTrainer(t, trainers, faults.empty() ? "" : fault_flag + absl::StrCat(",seed=", t)));
  }
  for (int t = 0; t < trainers; ++t) {
    EXPECT_EQ(cluster.WaitTrainer(pids[t]), 0) << ReadFile(absl::StrCat(dir, "/trainer-", t, ".log"));
  }
  for (int code : cluster.StopHosts()) EXPECT_EQ(code, 0) << "hosts must shut down cleanly on SIGTERM";
  return ReadFile(dir + "/summary.json");
}

class ClusterRunTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClusterRunTest, ChecksumEqualsStandaloneForAnyHostsAndTrainers) {
  const std::string flags = Flags(Corpus(), GetParam());
  const std::string base = ::testing::TempDir() + "/cluster_" + GetParam();
  const std::string reference = Standalone(flags, base + "_standalone");
  ASSERT_EQ(reference.size(), 16u);

  const std::string two_by_two = Cluster(flags, base + "_2x2", 2, 2);
  EXPECT_EQ(ChecksumIn(two_by_two), reference) << two_by_two;
  EXPECT_NE(two_by_two.find("\"hosts\":2"), std::string::npos) << two_by_two;
  EXPECT_NE(two_by_two.find("\"trainers\":2"), std::string::npos) << two_by_two;

  const std::string one_by_three = Cluster(flags, base + "_1x3", 1, 3);
  EXPECT_EQ(ChecksumIn(one_by_three), reference) << one_by_three;
}

TEST(ClusterMetricsTest, LeaderWritesMetricsWithBytesSentAndLossFalls) {
  const std::string dir = ::testing::TempDir() + "/cluster_metrics";
  Cluster(Flags(Corpus(), "f32"), dir, 2, 2);
  const std::vector<std::string> lines = absl::StrSplit(ReadFile(dir + "/metrics.jsonl"), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u);
  auto loss = [](const std::string& line) {
    const size_t at = line.find("\"loss\":");
    return at == std::string::npos ? -1.0 : std::stod(line.substr(at + 7));
  };
  EXPECT_LT(loss(lines.back()), loss(lines.front()));
  for (const std::string& line : lines) {
    EXPECT_NE(line.find("\"bytes_sent\":"), std::string::npos) << line;
    EXPECT_NE(line.find("\"expert_tokens\":[["), std::string::npos) << line;
  }
  EXPECT_NE(lines[2].find("\"val_loss\":"), std::string::npos) << lines[2];
}

TEST(ClusterFaultsTest, DroppedDuplicatedAndReorderedMessagesChangeNoBit) {
  const std::string flags = Flags(Corpus(), "f32") + " --steps=3";  // each lost message costs a 1 s retry
  const std::string base = ::testing::TempDir() + "/cluster_faults";
  const std::string reference = Standalone(flags, base + "_standalone");
  const std::string faulty = Cluster(flags, base + "_2x2", 2, 2, "drop=0.005,dup=0.1,reorder=0.1,reorder_ms=2");
  EXPECT_EQ(ChecksumIn(faulty), reference) << faulty;
}

INSTANTIATE_TEST_SUITE_P(Wire, ClusterRunTest, ::testing::Values("f32", "bf16"));

}  // namespace
}  // namespace sy::trainer::testing
