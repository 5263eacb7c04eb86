// Tests for SY_OPTION_FLAG / flags::OptionFlagGroup: a flag defined once fills its
// options field, takes the struct's default, and groups list only their own flags,
// in definition order.
#include "common/flags/option_flags.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/flags/flags.h"
#include "gtest/gtest.h"

namespace {

struct TestOptions {
  int32_t width = 7;
  double rate = 0.25;
  std::string name = "alpha";
  std::optional<int64_t> stop_at;
  bool verbose = false;
};

struct OtherOptions {
  int64_t other_count = 3;
};

struct TestFlagsName;
constexpr auto TestFlags = &sy::flags::OptionFlags<TestOptions, TestFlagsName>;
struct OtherFlagsName;
constexpr auto OtherFlags = &sy::flags::OptionFlags<OtherOptions, OtherFlagsName>;

}  // namespace

SY_OPTION_FLAG(TestFlags, int32_t, width, "a width");
SY_OPTION_FLAG(TestFlags, double, rate, "a rate");
SY_OPTION_FLAG(TestFlags, std::string, name, "a name");
SY_OPTION_FLAG(TestFlags, std::optional<int64_t>, stop_at, "a step (unset: never)");
SY_OPTION_FLAG(OtherFlags, int64_t, other_count, "a count of another group");
SY_OPTION_FLAG(TestFlags, bool, verbose, "a switch");

namespace sy::flags {
namespace {

TEST(OptionFlagsTest, DefaultsAreTheStructsOwn) {
  ASSERT_TRUE(ParseFlagArgs({}).ok());
  TestOptions options;
  options.width = -1;
  options.name = "overwritten";
  TestFlags().ReadInto(&options);
  EXPECT_EQ(options.width, 7);
  EXPECT_EQ(options.rate, 0.25);
  EXPECT_EQ(options.name, "alpha");
  EXPECT_FALSE(options.stop_at.has_value());
  EXPECT_FALSE(options.verbose);
  EXPECT_TRUE(TestFlags().ChangedFlags().empty());
}

TEST(OptionFlagsTest, ReadIntoCopiesEveryFlagOfTheGroup) {
  ASSERT_TRUE(ParseFlagArgs({"--width=12", "--rate=0.5", "--name=beta", "--stop_at=40", "--verbose"}).ok());
  TestOptions options;
  TestFlags().ReadInto(&options);
  EXPECT_EQ(options.width, 12);
  EXPECT_EQ(options.rate, 0.5);
  EXPECT_EQ(options.name, "beta");
  EXPECT_EQ(options.stop_at, std::optional<int64_t>(40));
  EXPECT_TRUE(options.verbose);
}

TEST(OptionFlagsTest, ChangedFlagsListsTheGroupsOwnInDefinitionOrder) {
  ASSERT_TRUE(ParseFlagArgs({"--verbose", "--other_count=9", "--name=beta", "--width=7"}).ok());
  // --width=7 is its default: not a change.
  EXPECT_EQ(TestFlags().ChangedFlags(), (std::vector<std::string>{"--name=beta", "--verbose=true"}));
  EXPECT_EQ(OtherFlags().ChangedFlags(), (std::vector<std::string>{"--other_count=9"}));
  OtherOptions other;
  OtherFlags().ReadInto(&other);
  EXPECT_EQ(other.other_count, 9);
}

}  // namespace
}  // namespace sy::flags
