// syctl processes against a live sy-coordinator process, as an operator would use
// them: every command with its table output, --json parsed by python3's json module,
// help, bad usage (exit 2), a refused command (exit 1) and an unreachable
// coordinator (exit 3). Two fake hosts and a fake trainer (test doubles speaking the
// protocol over loopback) make checkpoint, restore, rebalance and drain real.
// With --admin_listen/--admin_keys (keys made by `syctl keygen`): the authorised key runs
// `status` there, an unknown key and an admin call on the main endpoint exit 1 with
// PERMISSION_DENIED, and a host still registers on the main endpoint.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/coordinator/fake_node.h"

namespace sy::coordinator {
namespace {

namespace fs = std::filesystem;
using testing::FakeHost;
using testing::FakeTrainer;
using testing::Heartbeater;
using testing::WaitFor;
using ::testing::HasSubstr;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(int fd) {
  std::string data;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
  return data;
}

// Runs `argv` to completion, capturing stdout and stderr (via temporary files, so a
// large output can never block the child).
Result RunProcess(const std::vector<std::string>& argv) {
  static int counter = 0;
  const std::string base = (fs::temp_directory_path() / ("sy_syctl_it_" + std::to_string(::getpid()) + "_" +
                                                         std::to_string(counter++))).string();
  const std::string out_path = base + ".out", err_path = base + ".err";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const int out = ::open(out_path.c_str(), O_RDONLY), err = ::open(err_path.c_str(), O_RDONLY);
  r.out = ReadAll(out);
  r.err = ReadAll(err);
  ::close(out);
  ::close(err);
  fs::remove(out_path);
  fs::remove(err_path);
  return r;
}

// True when python3's json module parses `text`.
bool ParsesAsJson(const std::string& text) {
  const std::string path = (fs::temp_directory_path() / ("sy_syctl_json_" + std::to_string(::getpid()))).string();
  std::ofstream(path) << text;
  Result r = RunProcess({"/usr/bin/python3", "-c", "import json,sys; json.load(open(sys.argv[1]))", path});
  fs::remove(path);
  return r.exit_code == 0;
}

// Starts one sy-coordinator process per test (ready file, fresh database) and stops it after.
class SyctlIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("sy_syctl_it_dir_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    StartCoordinator({});
  }
  // Starts sy-coordinator with `extra` flags; its ready file's second line (with
  // --admin_listen) goes to admin_endpoint_.
  void StartCoordinator(const std::vector<std::string>& extra) {
    const std::string ready = dir_ + "/ready";
    std::vector<std::string> argv = {SY_COORDINATOR_PATH, "--listen=tcp://127.0.0.1:0", "--ready_file=" + ready,
                                     "--db=" + dir_ + "/db", "--expected_hosts=2", "--chunk_bytes=1024",
                                     "--heartbeat_timeout_ms=60000", "--retain=2",
                                     "--auto_rebalance=false",  // the tests rebalance through syctl
                                     // The fake hosts stream no live moves: moves go through checkpoints.
                                     "--live_moves=false",
                                     "--insecure"};  // fake nodes and syctl without keys: these tests are about syctl
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      const int log = ::open((dir_ + "/coordinator.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(log, 2);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ASSERT_TRUE(WaitFor([&] { return fs::exists(ready); })) << "sy-coordinator did not become ready";
    std::ifstream(ready) >> endpoint_ >> admin_endpoint_;
    ASSERT_THAT(endpoint_, HasSubstr("tcp://127.0.0.1:"));
  }
  void TearDown() override {
    StopCoordinator(SIGTERM);
    fs::remove_all(dir_);
  }
  void StopCoordinator(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
  }

  Result Syctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {SY_SYCTL_PATH, "--coordinator=" + endpoint_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv);
  }

  // Two hosts and a trainer registered; the placement exists once this returns.
  void StartCluster() {
    for (const char* id : {"host-0", "host-1"}) {
      auto host = FakeHost::Start(id, endpoint_);
      ASSERT_TRUE(host.ok()) << host.status();
      ASSERT_TRUE((*host)->Register().ok());
      hosts_.push_back(*std::move(host));
    }
    auto trainer = FakeTrainer::Start("trainer-0", endpoint_);
    ASSERT_TRUE(trainer.ok());
    ASSERT_TRUE((*trainer)->Register().ok());
    trainer_ = *std::move(trainer);
    ASSERT_TRUE(WaitFor([&] { return hosts_[0]->table_epoch() >= 1 && hosts_[1]->table_epoch() >= 1; }));
  }

  std::string dir_;
  pid_t pid_ = 0;
  std::string endpoint_;
  std::string admin_endpoint_;  // with --admin_listen
  std::vector<std::unique_ptr<FakeHost>> hosts_;
  std::unique_ptr<FakeTrainer> trainer_;
};

TEST_F(SyctlIntegrationTest, StatusHostsAndExpertsAsTablesAndJson) {
  StartCluster();
  Result status = Syctl({"status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("placement           ready"));
  EXPECT_THAT(status.out, HasSubstr("2 alive / 2 known"));
  Result hosts = Syctl({"hosts"});
  ASSERT_EQ(hosts.exit_code, 0) << hosts.err;
  EXPECT_THAT(hosts.out, HasSubstr("NODE       ROLE     STATE  ACTORS"));
  EXPECT_THAT(hosts.out, HasSubstr("host-0     host     alive  3"));
  EXPECT_THAT(hosts.out, HasSubstr("trainer-0  trainer  alive  -"));
  Result experts = Syctl({"experts"});
  ASSERT_EQ(experts.exit_code, 0) << experts.err;
  EXPECT_THAT(experts.out, HasSubstr("L0E1    host-1"));
  for (const char* command : {"status", "hosts", "experts"}) {
    Result json = Syctl({"--json", command});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_TRUE(ParsesAsJson(json.out)) << command << ": " << json.out;
  }
  EXPECT_THAT(Syctl({"status", "--json"}).out, HasSubstr("\"placement_ready\":true"));
  EXPECT_THAT(Syctl({"experts", "--json"}).out, HasSubstr("{\"expert\":\"L0E0\",\"switch_layer\":0,\"index\":0,\"hosts\":[\"host-0\"]"));
  // A trainer that said it finished has left; a host removed by an operator has failed.
  ASSERT_TRUE(trainer_->Heartbeat(9, /*finished=*/true).ok());
  ASSERT_EQ(Syctl({"remove", "host-1"}).exit_code, 0);
  Result after = Syctl({"hosts"});
  EXPECT_THAT(after.out, HasSubstr("trainer-0  trainer  left"));
  EXPECT_THAT(after.out, HasSubstr("host-1     host     failed"));
}

TEST_F(SyctlIntegrationTest, CheckpointNowListAndRestore) {
  StartCluster();
  Heartbeater beats({hosts_[0].get(), hosts_[1].get()}, {trainer_.get()});
  beats.step = 7;
  ASSERT_TRUE(WaitFor([&] { return Syctl({"status"}).out.find("step                7") != std::string::npos; }));
  Result now = Syctl({"checkpoint", "now"});
  ASSERT_EQ(now.exit_code, 0) << now.err;
  EXPECT_EQ(now.out, "checkpoint 1 started\n");
  ASSERT_TRUE(WaitFor([&] { return Syctl({"checkpoint", "list"}).out.find("\n1   7") != std::string::npos; }));
  Result list = Syctl({"checkpoint", "list"});
  EXPECT_THAT(list.out, HasSubstr("ID  STEP  EPOCH  ACTORS  BYTES"));
  EXPECT_THAT(list.out, HasSubstr("6       15600"));  // 6 actors x 2600 bytes
  Result json = Syctl({"--json", "checkpoint", "list"});
  EXPECT_TRUE(ParsesAsJson(json.out)) << json.out;
  EXPECT_THAT(json.out, HasSubstr("\"id\":1,\"step\":7"));
  Result restore = Syctl({"checkpoint", "restore", "1"});
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  EXPECT_THAT(restore.out, HasSubstr("checkpoint 1 restored"));
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 7u);
  EXPECT_EQ(hosts_[0]->installed().size() + hosts_[1]->installed().size(), 6u);
  Result missing = Syctl({"checkpoint", "restore", "5"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND"));
}

TEST_F(SyctlIntegrationTest, RebalanceDrainAndRemove) {
  StartCluster();
  ASSERT_TRUE(trainer_->ReportLoad(1, {{cluster::ActorKey::Expert(0, 0), 400, 3}, {cluster::ActorKey::Expert(0, 1), 40, 0},
                                       {cluster::ActorKey::Expert(0, 2), 300, 0}, {cluster::ActorKey::Expert(0, 3), 40, 0}})
                  .ok());
  Result dry = Syctl({"rebalance", "--dry_run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_THAT(dry.out, HasSubstr("ACTOR  ACTION"));
  EXPECT_THAT(dry.out, HasSubstr("plan only (--dry_run)"));
  Result experts = Syctl({"experts"});
  EXPECT_THAT(experts.out, HasSubstr("L0E0    host-0  400                 3        400.0"));
  // Moved state travels through the latest checkpoint: none yet, so a real rebalance is refused.
  Result refused = Syctl({"rebalance"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("needs a committed checkpoint"));
  {
    Heartbeater beats({hosts_[0].get(), hosts_[1].get()}, {trainer_.get()});
    beats.step = 4;
    ASSERT_TRUE(WaitFor([&] { return Syctl({"status"}).out.find("step                4") != std::string::npos; }));
    ASSERT_EQ(Syctl({"checkpoint", "now"}).exit_code, 0);
    ASSERT_TRUE(WaitFor([&] { return Syctl({"checkpoint", "list"}).out.find("\n1   4") != std::string::npos; }));
  }
  Result applied = Syctl({"rebalance", "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_TRUE(ParsesAsJson(applied.out)) << applied.out;
  EXPECT_THAT(applied.out, HasSubstr("\"applied\":true"));
  EXPECT_THAT(Syctl({"rebalance"}).out, HasSubstr("balanced: nothing to move"));

  // The rebalance's moves restore first: a host that joins during a recovery waits for the
  // next checkpoint, which this test never takes.
  ASSERT_TRUE(WaitFor([&] { return Syctl({"status"}).out.find("training") != std::string::npos; }));
  auto joined = FakeHost::Start("host-2", endpoint_);
  ASSERT_TRUE(joined.ok());
  ASSERT_TRUE((*joined)->Register().ok());
  ASSERT_TRUE(WaitFor([&] { return !(*joined)->actors().empty(); }));
  // The join's move may still be restoring: a drain is refused (Unavailable) until it is done.
  Result drain;
  ASSERT_TRUE(WaitFor([&] {
    drain = Syctl({"drain", "host-2"});
    return drain.err.find("a recovery is under way") == std::string::npos;
  }));
  ASSERT_EQ(drain.exit_code, 0) << drain.err;
  EXPECT_EQ(drain.out, "draining host-2\n");
  ASSERT_TRUE(WaitFor([&] { return (*joined)->actors().empty(); }));
  EXPECT_THAT(Syctl({"hosts"}).out, HasSubstr("host-2     host     draining  0"));
  Result remove = Syctl({"remove", "host-1"});
  ASSERT_EQ(remove.exit_code, 0) << remove.err;
  EXPECT_THAT(Syctl({"hosts"}).out, HasSubstr("host-1     host     failed"));
  Result unknown = Syctl({"drain", "host-9"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("no host 'host-9'"));
}

TEST_F(SyctlIntegrationTest, FaultsOnTheCoordinatorAndOnANode) {
  StartCluster();
  Result node = Syctl({"faults", "dup=0.01,seed=3", "--node=host-1"});
  ASSERT_EQ(node.exit_code, 0) << node.err;
  EXPECT_EQ(node.out, "faults on host-1: dup=0.01,seed=3\n");
  EXPECT_EQ(hosts_[1]->fault_specs(), std::vector<std::string>{"dup=0.01,seed=3"});
  Result own = Syctl({"--json", "faults", "delay=0.1,delay_ms=1,seed=2"});
  ASSERT_EQ(own.exit_code, 0) << own.err;
  EXPECT_TRUE(ParsesAsJson(own.out));
  EXPECT_EQ(Syctl({"status"}).exit_code, 0);  // still served with delays injected
  EXPECT_EQ(Syctl({"faults", "clear"}).exit_code, 0);
  Result bad = Syctl({"faults", "drop=2"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("drop"));
}

TEST_F(SyctlIntegrationTest, HelpAndUsageErrors) {
  Result help = RunProcess({SY_SYCTL_PATH, "help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* command : {"status", "hosts", "experts", "checkpoint now | list | restore K", "rebalance [--dry_run]",
                              "drain HOST", "faults SPEC"}) {
    EXPECT_THAT(help.out, HasSubstr(command));
  }
  Result one = RunProcess({SY_SYCTL_PATH, "rebalance", "--help"});
  EXPECT_EQ(one.exit_code, 0);
  EXPECT_THAT(one.out, HasSubstr("--dry_run only shows the planned moves"));
  EXPECT_EQ(RunProcess({SY_SYCTL_PATH}).exit_code, 2);
  EXPECT_EQ(Syctl({"bogus"}).exit_code, 2);
  EXPECT_EQ(Syctl({"checkpoint"}).exit_code, 2);
  EXPECT_EQ(Syctl({"checkpoint", "restore", "x"}).exit_code, 2);
  EXPECT_EQ(Syctl({"drain"}).exit_code, 2);
  EXPECT_EQ(Syctl({"status", "extra"}).exit_code, 2);
  EXPECT_EQ(Syctl({"rebalance", "--threshold=0.5"}).exit_code, 2);
  EXPECT_EQ(Syctl({"--timeout_ms=abc", "status"}).exit_code, 2);
  Result no_address = RunProcess({SY_SYCTL_PATH, "status"});
  EXPECT_EQ(no_address.exit_code, 2);
  EXPECT_THAT(no_address.err, HasSubstr("--coordinator is required"));
  // A command the coordinator refuses (no placement yet): exit 1 with its reason.
  Result refused = Syctl({"checkpoint", "now"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("FAILED_PRECONDITION"));
}

TEST_F(SyctlIntegrationTest, UnreachableCoordinatorExitsWith3) {
  EXPECT_EQ(Syctl({"status"}).exit_code, 0);
  StopCoordinator(SIGKILL);
  Result gone = Syctl({"--timeout_ms=400", "status"});
  EXPECT_EQ(gone.exit_code, 3);
  EXPECT_THAT(gone.err, HasSubstr("did not answer within 400 ms"));
  Result json = Syctl({"--timeout_ms=300", "--json", "hosts"});
  EXPECT_EQ(json.exit_code, 3);
  EXPECT_TRUE(json.out.empty());
}

// A fresh key pair from `syctl keygen`: {public, secret}.
std::pair<std::string, std::string> Keygen() {
  Result r = RunProcess({SY_SYCTL_PATH, "keygen"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string public_label, public_key, secret_label, secret_key;
  lines >> public_label >> public_key >> secret_label >> secret_key;
  EXPECT_EQ(public_label, "public");
  EXPECT_EQ(secret_label, "secret");
  EXPECT_EQ(public_key.size(), 40u);
  EXPECT_EQ(secret_key.size(), 40u);
  return {public_key, secret_key};
}

TEST_F(SyctlIntegrationTest, AdminKeysGuardAdminCalls) {
  StopCoordinator(SIGTERM);
  fs::remove_all(dir_ + "/db");
  fs::remove(dir_ + "/ready");
  const auto server = Keygen(), admin = Keygen(), stranger = Keygen();
  std::ofstream(dir_ + "/coordinator.keys") << "server_secret " << server.second << "\nserver_public " << server.first
                                            << "\nadmin ops " << admin.first << "\n";
  for (const auto& [name, pair] : {std::pair{std::string("ops"), admin}, std::pair{std::string("stranger"), stranger}}) {
    std::ofstream(dir_ + "/" + name + ".keys") << "client_public " << pair.first << "\nclient_secret " << pair.second
                                               << "\nserver_public " << server.first << "\n";
  }
  StartCoordinator({"--admin_listen=tcp://127.0.0.1:0", "--admin_keys=" + dir_ + "/coordinator.keys"});
  ASSERT_THAT(admin_endpoint_, HasSubstr("tcp://127.0.0.1:"));
  ASSERT_NE(admin_endpoint_, endpoint_);

  Result ok = RunProcess({SY_SYCTL_PATH, "--coordinator=" + admin_endpoint_, "--admin_key_file=" + dir_ + "/ops.keys",
                          "status"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("epoch"));

  Result unknown = RunProcess({SY_SYCTL_PATH, "--coordinator=" + admin_endpoint_,
                               "--admin_key_file=" + dir_ + "/stranger.keys", "status"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("not an authorised admin key"));
  EXPECT_THAT(unknown.err, HasSubstr("PERMISSION_DENIED"));

  Result main_endpoint = Syctl({"status"});
  EXPECT_EQ(main_endpoint.exit_code, 1);
  EXPECT_THAT(main_endpoint.err, HasSubstr("admin calls need the admin key on --admin_listen"));
  EXPECT_THAT(main_endpoint.err, HasSubstr("PERMISSION_DENIED"));

  Result missing = RunProcess({SY_SYCTL_PATH, "--coordinator=" + admin_endpoint_,
                               "--admin_key_file=" + dir_ + "/none.keys", "status"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("cannot read admin key file"));

  // Hosts keep using the main endpoint.
  auto host = FakeHost::Start("host-0", endpoint_);
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_TRUE((*host)->Register().ok());
}

TEST_F(SyctlIntegrationTest, BadAdminKeyFileIsExit2) {
  StopCoordinator(SIGTERM);
  std::ofstream(dir_ + "/bad.keys") << "server_secret nonsense\n";
  Result r = RunProcess({SY_COORDINATOR_PATH, "--db=" + dir_ + "/db2", "--admin_listen=tcp://127.0.0.1:0",
                         "--admin_keys=" + dir_ + "/bad.keys", "--insecure"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("line 1: the key is not a 40-character Z85 CURVE key"));
}

}  // namespace
}  // namespace sy::coordinator
