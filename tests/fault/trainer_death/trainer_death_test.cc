// Two expert hosts and two trainers as real processes; trainer 1 is SIGKILLed
// once training is under way. The hosts must not wedge: within their step
// timeout they log an ERROR naming the incomplete step and its missing
// micro-batches, count it (sy_host_step_timeouts_total, read here through the
// status query), fail the leader's norm gather so the leader exits with an
// error instead of hanging, keep answering requests, and shut down cleanly.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "services/cluster/cluster_keys.h"
#include "services/trainer/step_client.h"
#include "tests/unit/trainer/cluster_processes.h"

namespace sy::trainer::testing {
namespace {

std::string Corpus() {
  const std::string path = ::testing::TempDir() + "/trainer_death_corpus.txt";
  std::string text;
  uint32_t x = 7;
  while (text.size() < 40000) {
    x = x * 1103515245u + 12345u;
    text += static_cast<char>('a' + (x >> 16) % 26);
    if ((x >> 8) % 6 == 0) text += ' ';
  }
  FILE* f = fopen(path.c_str(), "w");
  fwrite(text.data(), 1, text.size(), f);
  fclose(f);
  return path;
}

size_t Lines(const std::string& path) {
  const std::string text = ReadFile(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(TrainerDeathTest, HostsReportTheIncompleteStepAndKeepServing) {
  const std::string dir = ::testing::TempDir() + "/trainer_death";
  const std::string flags = absl::StrCat(
      "--data=", Corpus(),
      " --steps=100000 --layers=2 --d_model=16 --heads=2 --d_ff=32 --experts=4 --moe_every=1 --context=8"
      " --micro_batch=2 --micro_batches=4 --eval_every=0 --threads=1 --log_level=warning");
  LocalCluster cluster(dir, flags);
  ASSERT_TRUE(cluster.StartHosts(2, "--step_timeout_s=1")) << cluster.error();
  const pid_t leader = cluster.StartTrainer(0, 2, "--rpc_timeout_s=60");
  const pid_t victim = cluster.StartTrainer(1, 2, "--rpc_timeout_s=60");

  // Kill trainer 1 once a few steps are done (at whatever point of a step it is).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (Lines(dir + "/metrics.jsonl") < 3 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(Lines(dir + "/metrics.jsonl"), 3u) << ReadFile(dir + "/trainer-0.log");
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  EXPECT_EQ(cluster.WaitTrainer(victim), 128 + SIGKILL);

  // The leader is told the step cannot complete (it does not hang on it).
  const int leader_exit = cluster.WaitTrainer(leader);
  const std::string leader_log = ReadFile(dir + "/trainer-0.log");
  EXPECT_EQ(leader_exit, 1) << leader_log;
  EXPECT_NE(leader_log.find("incomplete past the host's step timeout"), std::string::npos) << leader_log;

  // Every host counted the timeout, names the missing micro-batches, and still answers.
  // Asked as the dead trainer's node (its key: step status queries come from trainers).
  transport::ZmqOptions zmq;
  zmq.node_id = "trainer-1";
  auto curve = cluster::LoadNodeCurve({dir + "/keys", false}, "trainer-1");
  ASSERT_TRUE(curve.ok()) << curve.status();
  zmq.curve = *curve;
  auto zt = transport::ZmqTransport::Create(zmq);
  ASSERT_TRUE(zt.ok()) << zt.status();
  std::vector<std::string> names;
  for (size_t i = 0; i < cluster.endpoints().size(); ++i) {
    names.push_back(absl::StrCat("host-", i));
    ASSERT_TRUE((*zt)->Connect(names.back(), cluster.endpoints()[i]).ok());
  }
  auto rpc = transport::RpcNode::Create(*std::move(zt), {}, nullptr);
  ASSERT_TRUE(rpc.ok());
  StepClient client(rpc->get(), names, 4, "death-test", absl::Seconds(10));
  for (int h = 0; h < 2; ++h) {
    auto status = client.Status(h);
    ASSERT_TRUE(status.ok()) << "host " << h << " does not answer: " << status.status();
    EXPECT_GE(status->step_timeouts, 1u) << "host " << h;
    EXPECT_FALSE(status->missing_micro_batches.empty()) << "host " << h;
    for (uint32_t m : status->missing_micro_batches) EXPECT_GE(m, 2u) << "only trainer 1's micro-batches (2 and 3)";
    const std::string log = ReadFile(absl::StrCat(dir, "/host-", h, ".log"));
    EXPECT_NE(log.find("ERROR"), std::string::npos) << log;
    EXPECT_NE(log.find(absl::StrCat("step ", status->version + 1, " incomplete")), std::string::npos) << log;
  }
  (*rpc)->Close();
  for (int code : cluster.StopHosts()) EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace sy::trainer::testing
