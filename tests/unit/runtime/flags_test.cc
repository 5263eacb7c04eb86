// Tests for sy_flags: range checks, positional-argument rejection (exit code 2)
// and the common service flags.
#include "common/flags/flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "common/flags/common_flags.h"
#include "common/log/log.h"
#include "gtest/gtest.h"

namespace sy::flags {
namespace {

// Declared first: the forked child must be the first to set the usage message.
TEST(FlagsDeathTest, PositionalArgumentsExitWithCode2) {
  std::vector<std::string> args = {"sy-test", "--log_level=debug", "stray", "other"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  EXPECT_EXIT(ParseCommandLine(static_cast<int>(argv.size()), argv.data(), "sy-test [flags]"),
              ::testing::ExitedWithCode(kUsageErrorExitCode),
              "unexpected positional argument\\(s\\): 'stray' 'other'");
}

TEST(FlagsDeathTest, ExitIfInvalidPrintsEveryFailure) {
  EXPECT_EXIT(ExitIfInvalid({RequirePositive("steps", int64_t{0}), absl::OkStatus(),
                             RequireInRange("dropout", 1.5, 0.0, 1.0)}),
              ::testing::ExitedWithCode(kUsageErrorExitCode),
              "--steps=0: must be > 0\n.*--dropout=1.5: must be in \\[0, 1\\]");
}

TEST(FlagsTest, RangeChecks) {
  EXPECT_TRUE(RequirePositive("steps", int64_t{1}).ok());
  const absl::Status zero = RequirePositive("steps", int64_t{0});
  EXPECT_EQ(zero.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(zero.message(), "--steps=0: must be > 0");
  EXPECT_FALSE(RequirePositive("lr", -0.1).ok());
  EXPECT_TRUE(RequirePositive("lr", 3e-4).ok());
  EXPECT_TRUE(RequireNonNegative("seed", int64_t{0}).ok());
  EXPECT_FALSE(RequireNonNegative("seed", int64_t{-1}).ok());
  EXPECT_FALSE(RequireNonNegative("alpha", -1e-9).ok());
  EXPECT_TRUE(RequireInRange("port", int64_t{65535}, 0, 65535).ok());
  EXPECT_EQ(RequireInRange("port", int64_t{65536}, 0, 65535).message(),
            "--port=65536: must be in [0, 65535]");
  EXPECT_TRUE(RequireInRange("dropout", 0.4, 0.0, 1.0).ok());
  EXPECT_FALSE(RequireInRange("dropout", std::nan(""), 0.0, 1.0).ok());
  EXPECT_FALSE(RequireNonEmpty("data", "").ok());
  EXPECT_TRUE(RequireNonEmpty("data", "x.txt").ok());
  EXPECT_TRUE(RequireNoPositionalArgs({}).ok());
  EXPECT_EQ(RequireNoPositionalArgs({"a"}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(FlagsTest, ParsesFlagsAndReturnsPositionalArgs) {
  std::vector<std::string> args = {"syctl", "--log_level=warning", "status", "--metrics_port=0",
                                   "hosts"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  const std::vector<std::string> positional =
      ParseCommandLineWithArgs(static_cast<int>(argv.size()), argv.data(), "syctl COMMAND");
  EXPECT_EQ(positional, (std::vector<std::string>{"status", "hosts"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_log_level), "warning");
  EXPECT_EQ(absl::GetFlag(FLAGS_metrics_port), 0);
  ASSERT_TRUE(ApplyLogLevelFlag().ok());
  EXPECT_EQ(log::MinLevel(), log::Level::kWarning);
  log::SetMinLevel(log::Level::kInfo);
}

TEST(FlagsTest, BadLogLevelIsRejectedAndChangesNothing) {
  log::SetMinLevel(log::Level::kInfo);
  absl::SetFlag(&FLAGS_log_level, "loud");
  const absl::Status status = ApplyLogLevelFlag();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("--log_level"), std::string::npos);
  EXPECT_EQ(log::MinLevel(), log::Level::kInfo);
  absl::SetFlag(&FLAGS_log_level, "info");
}

TEST(FlagsTest, MetricsExporterFromFlags) {
  metrics::Registry registry;
  absl::SetFlag(&FLAGS_metrics_address, "127.0.0.1");
  absl::SetFlag(&FLAGS_metrics_port, -1);
  auto disabled = StartMetricsExporterFromFlags(registry);
  ASSERT_TRUE(disabled.ok());
  EXPECT_EQ(*disabled, nullptr);
  absl::SetFlag(&FLAGS_metrics_port, 70000);
  EXPECT_EQ(StartMetricsExporterFromFlags(registry).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::SetFlag(&FLAGS_metrics_port, 0);
  auto enabled = StartMetricsExporterFromFlags(registry);
  ASSERT_TRUE(enabled.ok()) << enabled.status();
  ASSERT_NE(*enabled, nullptr);
  EXPECT_NE((*enabled)->port(), 0);
  absl::SetFlag(&FLAGS_metrics_port, -1);
}

}  // namespace
}  // namespace sy::flags
