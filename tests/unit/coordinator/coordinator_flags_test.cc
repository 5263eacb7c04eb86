// sy-coordinator's command line: the flags' defaults and values become CoordinatorOptions,
// out-of-range values are refused naming the flag, and the binary itself answers --help
// with its usage (--helpfull with its flags) and exits 2 on a bad value.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "services/coordinator/coordinator_flags.h"

ABSL_DECLARE_FLAG(std::string, db);
ABSL_DECLARE_FLAG(int32_t, retain);
ABSL_DECLARE_FLAG(int64_t, chunk_bytes);
ABSL_DECLARE_FLAG(int64_t, heartbeat_timeout_ms);
ABSL_DECLARE_FLAG(int32_t, expected_hosts);
ABSL_DECLARE_FLAG(bool, auto_rebalance);
ABSL_DECLARE_FLAG(std::string, keys);
ABSL_DECLARE_FLAG(std::string, initial_placement);

namespace sy::coordinator {
namespace {

using ::testing::HasSubstr;

struct ProcessRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

ProcessRun RunCoordinator(const std::string& args) {
  ProcessRun run;
  FILE* pipe = ::popen((std::string(SY_COORDINATOR_PATH) + " " + args + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer;
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) run.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

class CoordinatorFlagsTest : public ::testing::Test {
 private:
  absl::FlagSaver saver_;  // every test starts from the defaults
};

TEST_F(CoordinatorFlagsTest, FlagsBecomeTheOptions) {
  absl::SetFlag(&FLAGS_db, "/tmp/db");
  absl::SetFlag(&FLAGS_retain, 5);
  absl::SetFlag(&FLAGS_heartbeat_timeout_ms, 700);
  absl::SetFlag(&FLAGS_expected_hosts, 3);
  absl::SetFlag(&FLAGS_auto_rebalance, false);
  absl::SetFlag(&FLAGS_keys, "/tmp/keys");
  absl::StatusOr<CoordinatorOptions> options = CoordinatorOptionsFromFlags();
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->db_path, "/tmp/db");
  EXPECT_EQ(options->security.keys_dir, "/tmp/keys");
  EXPECT_EQ(options->retain, 5);
  EXPECT_EQ(options->heartbeat_timeout, absl::Milliseconds(700));
  EXPECT_EQ(options->expected_hosts, 3u);
  EXPECT_FALSE(options->auto_rebalance);
  // The rest keep the documented defaults.
  const CoordinatorOptions defaults;
  EXPECT_EQ(options->listen, defaults.listen);
  EXPECT_EQ(options->chunk_bytes, defaults.chunk_bytes);
  EXPECT_EQ(options->heartbeat_interval, defaults.heartbeat_interval);
  EXPECT_EQ(options->max_replicas, defaults.max_replicas);
}

TEST_F(CoordinatorFlagsTest, OutOfRangeValuesAreRefusedNamingEachFlag) {
  absl::SetFlag(&FLAGS_retain, 0);
  absl::SetFlag(&FLAGS_chunk_bytes, 2);
  absl::StatusOr<CoordinatorOptions> options = CoordinatorOptionsFromFlags();
  ASSERT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(options.status().message()), HasSubstr("--db"));
  EXPECT_THAT(std::string(options.status().message()), HasSubstr("--retain=0"));
  EXPECT_THAT(std::string(options.status().message()), HasSubstr("--chunk_bytes=2"));
}

TEST_F(CoordinatorFlagsTest, AnInitialPlacementFileIsReadAtStartAndABadOneIsRefused) {
  const std::string path = ::testing::TempDir() + "/coordinator_flags_placement.json";
  std::ofstream(path) << R"({"experts": [[["host-0"], ["host-1"], ["host-2"]]], "dense": [["host-0"]]})";
  absl::SetFlag(&FLAGS_db, "/tmp/db");
  absl::SetFlag(&FLAGS_keys, "/tmp/keys");
  absl::SetFlag(&FLAGS_initial_placement, path);
  absl::SetFlag(&FLAGS_expected_hosts, 3);
  absl::StatusOr<CoordinatorOptions> options = CoordinatorOptionsFromFlags();
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_TRUE(options->initial_placement.has_value());
  EXPECT_EQ(options->initial_placement->entries.size(), 4u);
  // Three hosts named, two expected: a placement of another cluster.
  absl::SetFlag(&FLAGS_expected_hosts, 2);
  EXPECT_THAT(std::string(CoordinatorOptionsFromFlags().status().message()),
              HasSubstr("names 3 hosts, more than --expected_hosts=2"));
  absl::SetFlag(&FLAGS_initial_placement, path + ".missing");
  options = CoordinatorOptionsFromFlags();
  EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(options.status().message()), HasSubstr("--initial_placement=" + path + ".missing: cannot be opened"));
  // The binary exits 2 on a malformed file, naming it, before it opens anything.
  std::ofstream(path) << R"({"experts": [[["host-0"], ["host-0", "host-0"]]], "dense": []})";
  const std::string db = ::testing::TempDir() + "/coordinator_flags_placement_db";
  const ProcessRun bad = RunCoordinator("--db=" + db + " --insecure --initial_placement=" + path);
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("actor L0E1 lists host host-0 twice"));
  EXPECT_FALSE(std::ifstream(db).good());  // no database was created
  std::remove(path.c_str());
}

TEST(CoordinatorBinary, HelpShowsTheUsageHelpfullTheFlagsAndABadValueExits2NamingIt) {
  const ProcessRun help = RunCoordinator("--help");  // absl's help exits 1, having printed it
  EXPECT_THAT(help.output, HasSubstr("sy-coordinator --db=PATH"));
  const ProcessRun helpfull = RunCoordinator("--helpfull");
  EXPECT_THAT(helpfull.output, HasSubstr("-expected_hosts"));
  const ProcessRun bad = RunCoordinator("--db=/nonexistent/never --retain=0");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("--retain=0"));
}

}  // namespace
}  // namespace sy::coordinator
