// A real sy-local cluster (coordinator, 2 expert hosts, 2 trainers over loopback) trains
// a tiny model for more than 1,000 steps with checkpoints, and must end with status 0 and
// a complete summary.json. Past about 750 steps the coordinator's per-step host load
// series no longer fit a message header; the run used to end with status 1 and no
// summary facts ("asking the coordinator for the run's facts: no reply before the deadline").
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/unit/trainer/cluster_processes.h"

namespace sy::local {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using trainer::testing::ReadFile;
using trainer::testing::Spawn;
using trainer::testing::WaitExit;

constexpr int kSteps = 1100;

// Deterministic English-like text: sentences of words drawn with a fixed seed.
void WriteCorpus(const std::string& path, size_t bytes) {
  const std::vector<std::string> words = absl::StrSplit(
      "the of and to in is that it was for on are as with his they at be this from have or by one had not but "
      "what all were when we there can an your which their said if do will each about how up out them then she "
      "many some so these would other into has more her two like him see time could no make than first expert "
      "router token switch layer capacity gradient",
      ' ');
  uint64_t state = 1234;
  auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  std::string text;
  while (text.size() < bytes) {
    const uint64_t length = 4 + next(9);
    for (uint64_t w = 0; w < length; ++w) absl::StrAppend(&text, w == 0 ? "" : " ", words[next(words.size())]);
    absl::StrAppend(&text, next(4) == 0 ? "!\n" : ". ");
  }
  std::ofstream(path) << text;
}

TEST(LongRunTest, MoreThanAThousandStepsEndWithStatusZeroAndACompleteSummary) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/long_run_", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  WriteCorpus(dir + "/corpus.txt", 120000);
  const std::vector<std::string> argv = {
      SY_LOCAL_BINARY, "--hosts=2", "--trainers=2", absl::StrCat("--steps=", kSteps), "--checkpoint_every=50",
      "--micro_batch=2", "--context=32", "--micro_batches=2", "--layers=2", "--d_model=32", "--heads=2",
      "--d_ff=64", "--experts=4", "--moe_every=1", "--eval_every=0", "--eval_batches=1", "--timeout_s=240",
      "--data=" + dir + "/corpus.txt", "--workdir=" + dir + "/run"};
  const std::string log = dir + "/sy-local.log";
  const pid_t pid = Spawn(argv, log);
  ASSERT_GT(pid, 0);
  const int code = WaitExit(pid);
  const std::string output = ReadFile(log);
  ASSERT_EQ(code, 0) << output.substr(output.size() > 4000 ? output.size() - 4000 : 0);
  EXPECT_THAT(output, Not(HasSubstr("summary.json lacks")));  // no query failed

  const std::string summary = ReadFile(dir + "/run/summary.json");
  EXPECT_THAT(summary, HasSubstr(absl::StrCat("\"steps\":", kSteps, ",")));
  for (const char* field : {"\"final_loss\":", "\"param_checksum\":", "\"recoveries\":0,", "\"checkpoints\":",
                            "\"max_over_mean_host_load\":{\"first_10_steps\":", "\"host_cpu_seconds\":{\"host-0\":"}) {
    EXPECT_THAT(summary, HasSubstr(field));
  }
  EXPECT_THAT(summary, Not(HasSubstr("\"missing\"")));
  const std::vector<std::string> steps = absl::StrSplit(ReadFile(dir + "/run/metrics.jsonl"), '\n', absl::SkipEmpty());
  EXPECT_EQ(steps.size(), static_cast<size_t>(kSteps));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sy::local
