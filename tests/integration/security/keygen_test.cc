// Cluster keys end to end through the binaries: `syctl keygen --cluster` writes a
// directory every node loads (key files mode 0600, allowlist naming roles), `--add`
// grows it for a joining node, keys are never overwritten; and a networked binary
// started with neither --keys nor --insecure exits 2 saying how to make keys.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/transport/peer_allowlist.h"
#include "services/cluster/cluster_keys.h"

namespace sy::cluster {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct CommandRun {
  int code = -1;
  std::string output;  // stdout and stderr
};

CommandRun RunCommand(const std::string& command) {
  CommandRun run;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.output.append(buffer, n);
  const int status = ::pclose(pipe);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class KeygenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("sy-keygen-" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(KeygenTest, ClusterKeysRoundTripAndGrowByOneNode) {
  const std::string keys = dir_ + "/keys";
  CommandRun made = RunCommand(std::string(SY_SYCTL_PATH) + " keygen --cluster=" + keys +
                        " --hosts=2 --trainers=1 --operators=1");
  ASSERT_EQ(made.code, 0) << made.output;
  for (const char* name : {"coordinator", "host-0", "host-1", "trainer-0", "operator-0"}) {
    struct stat info;
    ASSERT_EQ(::stat(NodeKeyPath(keys, name).c_str(), &info), 0) << name;
    EXPECT_EQ(info.st_mode & 0777, 0600u) << name;
    absl::StatusOr<transport::CurveKeys> curve = LoadNodeCurve({keys, false}, name);
    ASSERT_TRUE(curve.ok()) << curve.status();
    EXPECT_EQ(curve->allowlist->Find(curve->client_public)->name, name);
  }
  auto list = transport::PeerAllowlist::Load(AllowlistPath(keys));
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)->entries().size(), 5u);
  EXPECT_EQ((*list)->Find(*(*list)->KeyOf("host-1"))->role, "host");

  const std::string before = ReadAll(AllowlistPath(keys));
  CommandRun again = RunCommand(std::string(SY_SYCTL_PATH) + " keygen --cluster=" + keys + " --hosts=1");
  EXPECT_EQ(again.code, 1) << again.output;
  EXPECT_THAT(again.output, HasSubstr("never overwritten"));
  EXPECT_EQ(ReadAll(AllowlistPath(keys)), before);

  CommandRun added = RunCommand(std::string(SY_SYCTL_PATH) + " keygen --cluster=" + keys + " --add host host-2");
  ASSERT_EQ(added.code, 0) << added.output;
  EXPECT_TRUE(LoadNodeCurve({keys, false}, "host-2").ok());
  // The allowlist loaded before the join learns the new key from the grown file (its
  // first unknown key: the once-a-second limit on re-reads has not been used yet).
  absl::StatusOr<transport::CurveKeys> host2 = LoadNodeCurve({keys, false}, "host-2");
  EXPECT_EQ((*list)->Find(host2->client_public)->name, "host-2");

  CommandRun bad_role = RunCommand(std::string(SY_SYCTL_PATH) + " keygen --cluster=" + keys + " --add host trainer-7");
  EXPECT_EQ(bad_role.code, 2) << bad_role.output;
  CommandRun twice = RunCommand(std::string(SY_SYCTL_PATH) + " keygen --cluster=" + keys + " --add host host-2");
  EXPECT_EQ(twice.code, 1) << twice.output;
}

TEST_F(KeygenTest, KeylessStartExitsTwoNamingTheKeys) {
  fs::create_directories(dir_);
  for (const std::string& command :
       {std::string(SY_EXPERT_HOST_PATH), std::string(SY_COORDINATOR_PATH) + " --db=" + dir_ + "/db",
        std::string(SY_TRAINER_PATH) + " --hosts=tcp://127.0.0.1:9 --data=/dev/null --steps=1"}) {
    CommandRun run = RunCommand(command);
    EXPECT_EQ(run.code, 2) << command << "\n" << run.output;
    EXPECT_THAT(run.output, HasSubstr("--keys=DIR")) << command;
    EXPECT_THAT(run.output, HasSubstr("syctl keygen --cluster")) << command;
    EXPECT_THAT(run.output, HasSubstr("--insecure")) << command;
  }
  EXPECT_FALSE(fs::exists(dir_ + "/db"));  // nothing opened
}

}  // namespace
}  // namespace sy::cluster
