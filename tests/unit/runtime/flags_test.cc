// Tests for sy_flags: reading argv into the flags (spellings, mistakes named), help,
// range checks, positional-argument rejection (exit code 2) and the common service flags.
#include "common/flags/flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "common/flags/common_flags.h"
#include "common/log/log.h"
#include "gtest/gtest.h"

ABSL_FLAG(bool, test_switch, false, "a switch of this test");

namespace sy::flags {
namespace {

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

TEST(FlagsTest, ParseArgsTakesEverySpellingOverTheDefaults) {
  absl::StatusOr<std::vector<std::string>> positional =
      ParseArgs({"--log_level", "debug", "first", "--metrics_port=9", "--test_switch", "--", "--not_a_flag"});
  ASSERT_TRUE(positional.ok()) << positional.status();
  EXPECT_EQ(*positional, (std::vector<std::string>{"first", "--not_a_flag"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_log_level), "debug");
  EXPECT_EQ(absl::GetFlag(FLAGS_metrics_port), 9);
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_switch));
  // A second command line starts from the defaults again.
  ASSERT_TRUE(ParseArgs({"--notest_switch"}).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_test_switch));
  EXPECT_EQ(absl::GetFlag(FLAGS_log_level), "info");
  EXPECT_EQ(absl::GetFlag(FLAGS_metrics_port), -1);
  ASSERT_TRUE(ParseArgs({"--test_switch=false", "--help"}).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_test_switch));
}

TEST(FlagsTest, ParseArgsNamesTheFlagOfEachMistake) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--no_such_flag=1"}, "unknown flag --no_such_flag"},
      {{"--metrics_port=abc"}, "--metrics_port=abc: expected a 32-bit integer"},
      {{"--metrics_port=99999999999"}, "--metrics_port=99999999999"},
      {{"--test_switch=maybe"}, "--test_switch=maybe: expected true or false"},
      {{"--log_level"}, "--log_level needs a value"},
  };
  for (const auto& [args, expected] : cases) {
    const absl::Status status = ParseArgs(args).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << args[0];
    EXPECT_NE(status.message().find(expected), std::string::npos) << status;
  }
  EXPECT_NE(ParseFlagArgs({"--log_level=warning", "stray"}).message().find("unexpected argument 'stray'"),
            std::string::npos);
  EXPECT_TRUE(ParseFlagArgs({"--log_level=warning"}).ok());
}

TEST(FlagsTest, StrictSpellingKeepsTheWordAfterAFlag) {
  const absl::Status value_after = ParseArgs({"--log_level", "status"}, Spelling::kStrict).status();
  EXPECT_NE(value_after.message().find("--log_level needs a value"), std::string::npos) << value_after;
  const absl::Status switch_value = ParseArgs({"--test_switch=true"}, Spelling::kStrict).status();
  EXPECT_NE(switch_value.message().find("--test_switch takes no value"), std::string::npos) << switch_value;
  absl::StatusOr<std::vector<std::string>> words = ParseArgs({"status", "--test_switch"}, Spelling::kStrict);
  ASSERT_TRUE(words.ok()) << words.status();
  EXPECT_EQ(*words, std::vector<std::string>{"status"});
}

TEST(FlagsTest, HelpListsTheFlagsWithTheirMeaningAndDefault) {
  EXPECT_EQ(HelpRequested({"--log_level=info"}), Help::kNone);
  EXPECT_EQ(HelpRequested({"--help"}), Help::kOwn);
  EXPECT_EQ(HelpRequested({"--help", "--helpfull"}), Help::kFull);
  EXPECT_EQ(HelpRequested({"--", "--help"}), Help::kNone);
  const std::string help = HelpText("usage: sy-test [flags]", Help::kOwn);
  EXPECT_EQ(help.rfind("usage: sy-test [flags]\n", 0), 0u);
  EXPECT_NE(help.find("flags from runtime/flags_test.cc:"), std::string::npos) << help;
  EXPECT_NE(help.find("--test_switch"), std::string::npos);
  EXPECT_NE(help.find("--metrics_port           Port of the /metrics HTTP endpoint"), std::string::npos) << help;
  EXPECT_NE(help.find("(default: -1)"), std::string::npos);
}

TEST(FlagsTest, RequireOneOfAndFirstFailure) {
  EXPECT_TRUE(RequireOneOf("wire_dtype", "bf16", {"f32", "bf16"}).ok());
  EXPECT_EQ(RequireOneOf("wire_dtype", "f16", {"f32", "bf16"}).message(), "--wire_dtype=f16: must be one of f32, bf16");
  EXPECT_TRUE(FirstFailure({absl::OkStatus(), absl::OkStatus()}).ok());
  EXPECT_EQ(FirstFailure({absl::OkStatus(), RequirePositive("steps", int64_t{0}), RequirePositive("lr", -1.0)})
                .message(),
            "--steps=0: must be > 0");
}

TEST(FlagsTest, EveryFailureJoinsEachFailedCheckInOrder) {
  EXPECT_TRUE(EveryFailure({absl::OkStatus(), RequirePositive("steps", int64_t{1})}).ok());
  const absl::Status both =
      EveryFailure({RequirePositive("steps", int64_t{0}), absl::OkStatus(), RequireNonEmpty("data", "")});
  EXPECT_EQ(both.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(both.message(), "--steps=0: must be > 0; --data must not be empty");
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
