// sy-local's process management against stand-in binaries (fake_bin/): the
// happy path, each kind of failure (named, with the log tail, everyone stopped),
// timeouts and interruption.
#include "orchestration/local/local_cluster.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace sy::local {
namespace {

class LocalClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/local_cluster_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    options_.hosts = 2;
    options_.coordinator = false;  // the stand-ins speak no coordinator protocol
    options_.trainers = 2;
    options_.steps = 2;
    options_.data = "/nonexistent/corpus.txt";  // the stand-ins never read it
    options_.workdir = dir_;
    options_.bin_dir = SY_FAKE_BIN_DIR;
    options_.ready_timeout_s = 10;
    options_.grace_s = 5;
    options_.model_flags = {"--layers=2"};
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::Status Run() { return RunLocalCluster(options_, out_, stop_); }

  std::string File(const std::string& name) const {
    std::ifstream in(dir_ + "/" + name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // True when the process recorded in `pid_file` no longer exists.
  bool Gone(const std::string& pid_file) const {
    const std::string text = File(pid_file);
    if (text.empty()) return true;
    return kill(std::stoi(text), 0) != 0;
  }

  void ExpectAllGone() const {
    for (int h = 0; h < options_.hosts; ++h) EXPECT_TRUE(Gone(absl::StrCat("fake-host-", h, ".pid"))) << h;
    for (int t = 0; t < options_.trainers; ++t) EXPECT_TRUE(Gone(absl::StrCat("fake-trainer-", t, ".pid"))) << t;
  }

  std::string dir_;
  LauncherOptions options_;
  std::ostringstream out_;
  std::atomic<bool> stop_{false};
};

TEST_F(LocalClusterTest, RunsHostsThenTrainersAndStopsHostsCleanly) {
  ASSERT_TRUE(Run().ok()) << out_.str();
  // Trainers got both hosts' endpoints from the ready files, in host order.
  const std::string argv = File("fake-trainer-1.argv");
  EXPECT_NE(argv.find("--hosts=tcp://127.0.0.1:40000,tcp://127.0.0.1:40001\n"), std::string::npos) << argv;
  EXPECT_NE(argv.find("--layers=2\n"), std::string::npos) << argv;
  EXPECT_NE(File("fake-host-1.argv").find("--num_hosts=2\n"), std::string::npos);
  EXPECT_NE(File("host-0.log").find("SIGTERM"), std::string::npos) << "hosts are stopped with SIGTERM";
  const std::string out = out_.str();
  for (const char* part : {"step 1/2 | loss 5.5000", "step 2/2 | loss 5.0000", "2 hosts x 2 trainers",
                           "00112233aabbccdd", "summary in " }) {
    EXPECT_NE(out.find(part), std::string::npos) << part << " in\n" << out;
  }
  ExpectAllGone();
}

TEST_F(LocalClusterTest, StandaloneWithZeroHosts) {
  options_.hosts = 0;
  options_.trainers = 1;
  ASSERT_TRUE(Run().ok()) << out_.str();
  EXPECT_NE(File("fake-trainer-0.argv").find("--standalone\n"), std::string::npos);
  EXPECT_NE(out_.str().find("standalone"), std::string::npos);
}

TEST_F(LocalClusterTest, FailingTrainerIsNamedAndEveryoneStops) {
  options_.trainer_args = {"--fake=fail_rank1"};
  absl::Status s = Run();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_NE(s.message().find("trainer-1"), std::string::npos) << s;
  EXPECT_NE(s.message().find("exit status 4"), std::string::npos) << s;
  EXPECT_NE(s.message().find("cannot open --data (simulated)"), std::string::npos) << s;
  ExpectAllGone();
}

TEST_F(LocalClusterTest, HostCrashBeforeReadyIsNamed) {
  options_.hosts = 1;  // with two crashing hosts either could be seen first
  options_.host_args = {"--fake=crash"};
  absl::Status s = Run();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_NE(s.message().find("host-0"), std::string::npos) << s;
  EXPECT_NE(s.message().find("exited before writing its ready file: exit status 3"), std::string::npos) << s;
  EXPECT_NE(s.message().find("cannot bind (simulated)"), std::string::npos) << s;
  EXPECT_TRUE(File("fake-trainer-0.argv").empty()) << "no trainer starts without hosts";
  ExpectAllGone();
}

TEST_F(LocalClusterTest, MissingReadyFileTimesOut) {
  options_.host_args = {"--fake=no_ready"};
  options_.ready_timeout_s = 0.3;
  absl::Status s = Run();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(s.message().find("host-0"), std::string::npos) << s;
  EXPECT_NE(s.message().find("did not write its ready file"), std::string::npos) << s;
  EXPECT_NE(s.message().find("fake host 0 starting"), std::string::npos) << "log tail: " << s;
  ExpectAllGone();
}

TEST_F(LocalClusterTest, HostDyingDuringTrainingIsNamed) {
  options_.hosts = 1;
  options_.host_args = {"--fake=exit_early"};
  options_.trainer_args = {"--fake=hang"};
  absl::Status s = Run();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_NE(s.message().find("exited while the trainers were running: exit status 5"), std::string::npos) << s;
  EXPECT_NE(s.message().find("lost its socket"), std::string::npos) << s;
  ExpectAllGone();
}

TEST_F(LocalClusterTest, HostIgnoringSigtermIsKilledAndReported) {
  options_.host_args = {"--fake=ignore_term"};
  options_.grace_s = 0.3;
  absl::Status s = Run();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_NE(s.message().find("did not stop cleanly on SIGTERM: killed by signal 9"), std::string::npos) << s;
  ExpectAllGone();
}

TEST_F(LocalClusterTest, RunTimeoutStopsEverything) {
  options_.trainer_args = {"--fake=hang"};
  options_.timeout_s = 0.5;
  absl::Status s = Run();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  ExpectAllGone();
}

TEST_F(LocalClusterTest, StopRequestCancelsTheRun) {
  options_.trainer_args = {"--fake=hang"};
  stop_ = true;
  absl::Status s = Run();
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  ExpectAllGone();
}

TEST_F(LocalClusterTest, MissingBinaryIsAClearError) {
  options_.bin_dir = dir_ + "/no_such_dir";
  absl::Status s = Run();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("host-0: cannot run " + dir_ + "/no_such_dir/sy-expert-host"), std::string::npos) << s;
}

TEST_F(LocalClusterTest, TrainerSucceedingWithoutSummaryIsAnError) {
  options_.hosts = 1;
  options_.trainers = 2;
  options_.trainer_args = {"--trainer_index=9"};  // the stand-in then believes it is not the leader
  absl::Status s = Run();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("metrics.jsonl"), std::string::npos) << s;
}

}  // namespace
}  // namespace sy::local
