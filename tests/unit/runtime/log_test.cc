// Tests for sy_log: level parsing and filtering, line format, whole lines under
// concurrency, SY_CHECK.
#include "common/log/log.h"

#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace sy::log {
namespace {

std::mutex g_lines_mu;
std::vector<std::string> g_lines;

void CaptureLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_lines_mu);
  g_lines.push_back(line);
}

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_lines.clear();
    SetSinkForTesting(&CaptureLine);
    SetMinLevel(Level::kInfo);
  }
  void TearDown() override {
    SetSinkForTesting(nullptr);
    SetMinLevel(Level::kInfo);
  }
};

TEST_F(LogTest, ParseLevelAcceptsKnownNamesAndRejectsOthers) {
  EXPECT_EQ(*ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("INFO"), Level::kInfo);
  EXPECT_EQ(*ParseLevel("warn"), Level::kWarning);
  EXPECT_EQ(*ParseLevel("Warning"), Level::kWarning);
  EXPECT_EQ(*ParseLevel("error"), Level::kError);
  const absl::StatusOr<Level> bad = ParseLevel("verbose");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("verbose"), absl::string_view::npos);
  EXPECT_FALSE(ParseLevel("").ok());
}

TEST_F(LogTest, LineHasTimestampLevelFileLineAndThreadId) {
  SY_LOG(WARNING) << "disk " << 3 << " is " << 97.5 << "% full";
  ASSERT_EQ(g_lines.size(), 1u);
  const std::regex format(
      R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z WARNING log_test\.cc:\d+ \[\d+\] disk 3 is 97\.5% full\n$)");
  EXPECT_TRUE(std::regex_match(g_lines[0], format)) << g_lines[0];
}

TEST_F(LogTest, MessagesBelowMinLevelAreDroppedAndNotEvaluated) {
  int evaluated = 0;
  auto count = [&evaluated] { return ++evaluated; };
  SetMinLevel(Level::kWarning);
  SY_LOG(DEBUG) << count();
  SY_LOG(INFO) << count();
  SY_LOG(ERROR) << count();
  EXPECT_EQ(evaluated, 1);
  ASSERT_EQ(g_lines.size(), 1u);
  EXPECT_NE(g_lines[0].find(" ERROR "), std::string::npos);
  SetMinLevel(Level::kDebug);
  SY_LOG(DEBUG) << "now visible";
  EXPECT_EQ(g_lines.size(), 2u);
  EXPECT_EQ(MinLevel(), Level::kDebug);
}

TEST_F(LogTest, ConcurrentLinesStayWhole) {
  constexpr int kThreads = 4, kLines = 300;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kLines; ++i) SY_LOG(INFO) << "thread=" << t << " line=" << i << " end";
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(g_lines.size(), static_cast<size_t>(kThreads * kLines));
  const std::regex whole(R"(^.* INFO log_test\.cc:\d+ \[\d+\] thread=\d line=\d+ end\n$)");
  for (const std::string& line : g_lines) ASSERT_TRUE(std::regex_match(line, whole)) << line;
}

TEST(LogDeathTest, CheckFailureAbortsWithConditionAndMessage) {
  SetSinkForTesting(nullptr);
  const int replicas = 2;
  EXPECT_DEATH(SY_CHECK(replicas == 3) << "replicas must be 3", "Check failed: replicas == 3 replicas must be 3");
  SY_CHECK(replicas == 2) << "not reached";  // a passing check does nothing
}

}  // namespace
}  // namespace sy::log
