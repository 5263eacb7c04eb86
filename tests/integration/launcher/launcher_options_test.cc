// sy-local's flag parsing, the core split and the command lines it builds.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/flags/flags.h"
#include "orchestration/local/core_split.h"
#include "orchestration/local/launcher_flags.h"
#include "orchestration/local/process_commands.h"

namespace sy::local {
namespace {

std::vector<std::string> Base() { return {"--data=/tmp/c.txt", "--steps=3", "--workdir=/tmp/w"}; }

absl::StatusOr<LauncherOptions> ParseWith(std::vector<std::string> extra) {
  std::vector<std::string> args = Base();
  args.insert(args.end(), extra.begin(), extra.end());
  return ParseLauncherOptions(args);
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(LauncherOptions, OwnFlagsAndModelFlagsAreSeparated) {
  absl::StatusOr<LauncherOptions> o =
      ParseWith({"--hosts=2", "--trainers", "3", "--d_model=64", "--wire_dtype", "bf16", "--host_args=--a=1 --b=2"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->hosts, 2);
  EXPECT_EQ(o->trainers, 3);
  EXPECT_EQ(o->steps, 3);
  EXPECT_EQ(o->model_flags, (std::vector<std::string>{"--d_model=64", "--wire_dtype=bf16"}));
  EXPECT_EQ(o->host_args, (std::vector<std::string>{"--a=1", "--b=2"}));
}

// The launcher's help text: its usage and every flag it links.
std::string LauncherHelpText() { return flags::HelpText(kLauncherUsage, flags::Help::kOwn); }

TEST(LauncherOptions, HelpNeedsNothingElse) {
  // main() answers --help before any check (flags::ExitWithHelpIfRequested).
  EXPECT_EQ(flags::HelpRequested({"--help"}), flags::Help::kOwn);
  EXPECT_NE(LauncherHelpText().find("--hosts"), std::string::npos);
}

TEST(LauncherOptions, BadFlagsAreNamed) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--no_such_flag=1"}, "--no_such_flag"},
      {{"--d_model=abc"}, "--d_model=abc"},
      {{"--d_model=30", "--heads=4"}, "--d_model=30"},
      {{"--wire_dtype=f16"}, "--wire_dtype=f16"},
      {{"--hosts=-1"}, "--hosts=-1"},
      {{"--trainers=0"}, "--trainers=0"},
      {{"--hosts=0", "--trainers=2"}, "--trainers=2"},
      {{"--trainer_index=1"}, "--trainer_index is set by sy-local"},
      {{"--standalone"}, "--standalone is set by sy-local"},
      {{"--timeout_s=-3"}, "--timeout_s=-3"},
      {{"--device=gpu"}, "--device=gpu"},
      {{"--device=cudax"}, "--device=cudax"},
      {{"stray"}, "unexpected argument 'stray'"},
      {{"--lr"}, "--lr needs a value"},
  };
  for (const auto& [args, expected] : cases) {
    absl::StatusOr<LauncherOptions> o = ParseWith(args);
    ASSERT_FALSE(o.ok()) << args[0];
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << args[0];
    EXPECT_NE(o.status().message().find(expected), std::string::npos) << o.status();
  }
  for (const char* missing : {"--data", "--steps", "--workdir"}) {
    std::vector<std::string> args;
    for (const std::string& a : Base()) {
      if (a.rfind(missing, 0) != 0) args.push_back(a);
    }
    absl::StatusOr<LauncherOptions> o = ParseLauncherOptions(args);
    ASSERT_FALSE(o.ok());
    EXPECT_NE(o.status().message().find(std::string(missing) + " is required"), std::string::npos) << o.status();
  }
}

TEST(LauncherOptions, FaultFlagsNeedASurvivorAndACheckpoint) {
  // Base() has --steps=3.
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"--hosts=1", "--trainers=2", "--checkpoint_every=1", "--kill_host_at_step=1"}, "needs --hosts >= 2"},
      {{"--hosts=2", "--trainers=1", "--checkpoint_every=1", "--kill_trainer_at_step=1"}, "needs --trainers >= 2"},
      {{"--hosts=2", "--trainers=2", "--kill_host_at_step=1"}, "need --checkpoint_every > 0"},
      {{"--hosts=2", "--trainers=2", "--checkpoint_every=1", "--kill_host_at_step=3"}, "not before the last step"},
      {{"--hosts=2", "--coordinator=false", "--kill_coordinator_at_step=1"}, "needs the coordinator"},
      {{"--hosts=2", "--kill_coordinator_at_step=x"}, "--kill_coordinator_at_step=x"},
  };
  for (const auto& [args, expected] : refused) {
    absl::StatusOr<LauncherOptions> o = ParseWith(args);
    ASSERT_FALSE(o.ok()) << args.back();
    EXPECT_NE(o.status().message().find(expected), std::string::npos) << o.status();
  }
  absl::StatusOr<LauncherOptions> o = ParseWith({"--hosts=2", "--trainers=2", "--checkpoint_every=1",
                                                 "--kill_host_at_step=1", "--kill_trainer_at_step=2",
                                                 "--kill_coordinator_at_step=2"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->kill_host_at_step, 1);
  EXPECT_EQ(o->kill_trainer_at_step, 2);
  EXPECT_EQ(o->kill_coordinator_at_step, 2);
}

TEST(LauncherOptions, ElasticFlagsNeedTheCoordinatorAndACheckpointBeforeTheirStep) {
  const std::vector<std::string> steps40 = {"--steps=40", "--hosts=2", "--trainers=2"};
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"--add_host_at_step=15"}, "--add_host_at_step=15 needs --checkpoint_every in [1, 15]"},
      {{"--checkpoint_every=20", "--add_host_at_step=15"}, "needs --checkpoint_every in [1, 15]"},
      {{"--checkpoint_every=10", "--drain_host_at_step=40"}, "not before the last step"},
      {{"--checkpoint_every=10", "--coordinator=false", "--add_host_at_step=15"}, "needs the coordinator"},
      {{"--checkpoint_every=10", "--hosts=1", "--drain_host_at_step=15"}, "--drain_host_at_step needs --hosts >= 2"},
      {{"--checkpoint_every=10", "--drain_host_at_step=15", "--kill_host_at_step=20"}, "both pick the last host"},
      {{"--checkpoint_every=10", "--hosts=64", "--add_host_at_step=15"}, "needs --hosts < 64"},
      {{"--drain_host_at_step=-1"}, "--drain_host_at_step=-1"},
  };
  for (const auto& [args, expected] : refused) {
    std::vector<std::string> all = steps40;
    all.insert(all.end(), args.begin(), args.end());
    absl::StatusOr<LauncherOptions> o = ParseWith(all);
    ASSERT_FALSE(o.ok()) << args.back();
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << args.back();
    EXPECT_NE(o.status().message().find(expected), std::string::npos) << o.status();
  }
  absl::StatusOr<LauncherOptions> o = ParseWith({"--steps=40", "--hosts=2", "--trainers=2", "--checkpoint_every=10",
                                                 "--add_host_at_step=15", "--drain_host_at_step=10"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->add_host_at_step, 15);
  EXPECT_EQ(o->drain_host_at_step, 10);
  EXPECT_NE(LauncherHelpText().find("--add_host_at_step"), std::string::npos);
  EXPECT_NE(LauncherHelpText().find("--drain_host_at_step"), std::string::npos);
  // The joining host is index --hosts and counts itself in --num_hosts.
  const std::vector<std::string> joined = HostCommand(*o, "/b", 2, 1, "tcp://c:9");
  EXPECT_TRUE(Contains(joined, "--host_index=2"));
  EXPECT_TRUE(Contains(joined, "--num_hosts=3"));
  EXPECT_TRUE(Contains(joined, "--ready_file=/tmp/w/host-2.ready"));
  EXPECT_TRUE(Contains(joined, "--coordinator=tcp://c:9"));
  EXPECT_TRUE(Contains(HostCommand(*o, "/b", 1, 1), "--num_hosts=2"));
}

TEST(CoreSplit, FloorOfCoresPerProcessAtLeastOne) {
  EXPECT_EQ(ThreadsPerProcess(2, 1), 2);
  EXPECT_EQ(ThreadsPerProcess(2, 4), 1);
  EXPECT_EQ(ThreadsPerProcess(16, 4), 4);
  EXPECT_EQ(ThreadsPerProcess(16, 5), 3);
  EXPECT_EQ(ThreadsPerProcess(3, 2), 1);
  EXPECT_GE(AvailableCores(), 1);
}

TEST(Commands, CarryTheContractFlags) {
  absl::StatusOr<LauncherOptions> o = ParseWith({"--hosts=2", "--trainers=2", "--layers=3", "--host_args=--faults=x"});
  ASSERT_TRUE(o.ok()) << o.status();
  const std::vector<std::string> host = HostCommand(*o, "/b", 1, 3);
  EXPECT_EQ(host[0], "/b/sy-expert-host");
  for (const char* flag : {"--listen=tcp://127.0.0.1:0", "--ready_file=/tmp/w/host-1.ready", "--host_index=1",
                           "--num_hosts=2", "--threads=3", "--device=cpu", "--layers=3", "--faults=x"}) {
    EXPECT_TRUE(Contains(host, flag)) << flag;
  }
  EXPECT_FALSE(Contains(host, "--steps=3"));  // hosts get the step and lr from the leader
  const std::vector<std::string> trainer = TrainerCommand(*o, "/b", 1, {"tcp://a:1", "tcp://b:2"}, 1);
  EXPECT_EQ(trainer[0], "/b/sy-trainer");
  for (const char* flag : {"--hosts=tcp://a:1,tcp://b:2", "--trainer_index=1", "--num_trainers=2", "--steps=3",
                           "--data=/tmp/c.txt", "--workdir=/tmp/w", "--threads=1", "--layers=3"}) {
    EXPECT_TRUE(Contains(trainer, flag)) << flag;
  }
  EXPECT_FALSE(Contains(trainer, "--faults=x"));
  const std::vector<std::string> standalone = StandaloneCommand(*o, "/b", 2);
  EXPECT_TRUE(Contains(standalone, "--standalone"));
  EXPECT_TRUE(Contains(standalone, "--threads=2"));
  EXPECT_TRUE(Contains(standalone, "--layers=3"));
  EXPECT_FALSE(Contains(host, "--coordinator=tcp://c:9"));
  EXPECT_TRUE(Contains(HostCommand(*o, "/b", 1, 3, "tcp://c:9"), "--coordinator=tcp://c:9"));
  EXPECT_TRUE(Contains(TrainerCommand(*o, "/b", 1, {"tcp://a:1"}, 1, "tcp://c:9"), "--coordinator=tcp://c:9"));
}

TEST(Commands, CoordinatorGetsTheWorkdirDatabaseAndLearnsTheModelShapeFromTheNodes) {
  // 3 layers, every other one a Switch layer: one Switch layer of 4 experts, which the
  // coordinator learns from the nodes that register (no flag of its own carries it).
  absl::StatusOr<LauncherOptions> o =
      ParseWith({"--hosts=3", "--layers=3", "--moe_every=2", "--experts=4", "--coordinator_args=--retain=5"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->coordinator) << "the coordinator runs by default";
  absl::StatusOr<std::vector<std::string>> c = CoordinatorCommand(*o, "/b");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)[0], "/b/sy-coordinator");
  for (const char* flag : {"--db=/tmp/w/coordinator.db", "--ready_file=/tmp/w/coordinator.ready",
                           "--expected_hosts=3", "--retain=5"}) {
    EXPECT_TRUE(Contains(*c, flag)) << flag;
  }
  EXPECT_FALSE(Contains(*c, "--num_layers=1"));
  absl::StatusOr<LauncherOptions> off = ParseWith({"--hosts=2", "--coordinator=false"});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->coordinator);
  EXPECT_FALSE(ParseWith({"--hosts=2", "--coordinator=maybe"}).ok());
}

}  // namespace
}  // namespace sy::local
