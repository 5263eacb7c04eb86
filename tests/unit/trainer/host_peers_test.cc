// The trainer's growing host set: host ids, following a coordinator table's
// endpoints (a joined host gets a new peer at its own index, a moved one a new
// peer under the same index, the rest is left alone), and the data path over
// in-process hosts reaching a host that did not exist when it was built (step
// commits, dense pushes, the hosts in use, the coordinator's placement).
#include "services/trainer/host_peers.h"

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <capnp/message.h>
#include <gtest/gtest.h>

#include "common/transport/inproc_transport.h"
#include "common/transport/rpc.h"
#include "gpu/backend.h"
#include "gpu/model/model.h"
#include "gpu/model/params.h"
#include "proto/envelope.capnp.h"
#include "services/cluster/coordinator_link.h"
#include "services/cluster/placement.h"
#include "services/cluster/placement_table.h"
#include "services/cluster/switch_layers.h"
#include "services/trainer/dense_param_client.h"
#include "services/trainer/step_client.h"
#include "tests/support/inproc_node.h"

namespace sy::trainer {
namespace {

using Endpoints = std::map<std::string, std::string>;

// Records every connect; fails the ones to `refuse`.
struct FakeConnect {
  std::vector<std::pair<std::string, std::string>> calls;  // (peer, endpoint)
  std::string refuse;
  HostPeers::Connect fn() {
    return [this](const std::string& peer, const std::string& endpoint) {
      calls.emplace_back(peer, endpoint);
      if (endpoint == refuse) return absl::UnavailableError("connection refused");
      return absl::OkStatus();
    };
  }
};

TEST(HostIndexOf, OnlyHostDashDecimal) {
  EXPECT_EQ(HostIndexOf("host-0"), 0);
  EXPECT_EQ(HostIndexOf("host-12"), 12);
  for (const char* bad : {"host-", "host--1", "host-1a", "host-+1", "trainer-1", "Host-1", "", "host-99999999999"}) {
    EXPECT_EQ(HostIndexOf(bad), std::nullopt) << bad;
  }
}

TEST(HostPeers, StartsWithTheHostsFlagAndAdoptsTheirTableEndpointsWithoutConnecting) {
  HostPeers peers({"tcp://a:1", "tcp://b:2"});
  EXPECT_EQ(peers.size(), 2);
  EXPECT_EQ(peers.Peer(0), "host-0");
  EXPECT_EQ(peers.Peer(1), "host-1");
  EXPECT_EQ(peers.Peer(2), "");
  EXPECT_EQ(peers.Peer(-1), "");
  // The coordinator spells host-1's endpoint differently: the same process, no new peer.
  peers.AdoptInitial({{"host-0", "tcp://a:1"}, {"host-1", "tcp://127.0.0.1:2"}, {"host-2", "tcp://c:3"}});
  FakeConnect connect;
  auto changes = peers.Follow({{"host-0", "tcp://a:1"}, {"host-1", "tcp://127.0.0.1:2"}}, connect.fn());
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_TRUE(changes->empty());
  EXPECT_TRUE(connect.calls.empty());
  EXPECT_EQ(peers.Peer(1), "host-1");
  EXPECT_EQ(peers.size(), 2) << "AdoptInitial adds no host";
}

TEST(HostPeers, AJoinedHostGetsANewPeerAtItsIndexAndTheOthersKeepTheirs) {
  HostPeers peers({"tcp://a:1", "tcp://b:2"});
  FakeConnect connect;
  auto changes = peers.Follow(
      {{"host-0", "tcp://a:1"}, {"host-1", "tcp://b:2"}, {"host-2", "tcp://c:3"}, {"trainer-0", "tcp://t:9"},
       {"host-x", "tcp://x:1"}, {"host-5", ""}},
      connect.fn());
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].index, 2);
  EXPECT_EQ((*changes)[0].peer, "host-2@tcp://c:3");
  EXPECT_TRUE((*changes)[0].joined);
  EXPECT_EQ(connect.calls, (std::vector<std::pair<std::string, std::string>>{{"host-2@tcp://c:3", "tcp://c:3"}}));
  EXPECT_EQ(peers.size(), 3);
  EXPECT_EQ(peers.Peer(0), "host-0");
  EXPECT_EQ(peers.Peer(1), "host-1");
  EXPECT_EQ(peers.Peer(2), "host-2@tcp://c:3");
  // Following the same table again connects nothing.
  connect.calls.clear();
  changes = peers.Follow({{"host-2", "tcp://c:3"}}, connect.fn());
  ASSERT_TRUE(changes.ok());
  EXPECT_TRUE(changes->empty());
  EXPECT_TRUE(connect.calls.empty());
  // A host that skips an index: the gap stays unknown.
  changes = peers.Follow({{"host-4", "tcp://e:5"}}, connect.fn());
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(peers.size(), 5);
  EXPECT_EQ(peers.Peer(3), "");
  EXPECT_EQ(peers.Peer(4), "host-4@tcp://e:5");
}

TEST(HostPeers, AHostBackOnANewEndpointIsANewPeerUnderTheSameIndex) {
  HostPeers peers({"tcp://a:1", "tcp://b:2"});
  FakeConnect connect;
  auto changes = peers.Follow({{"host-1", "tcp://b:7"}}, connect.fn());
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_FALSE((*changes)[0].joined);
  EXPECT_EQ(peers.Peer(1), "host-1@tcp://b:7");
  EXPECT_EQ(peers.size(), 2);
}

TEST(HostPeers, AFailedConnectNamesTheHostAndLeavesItUnchanged) {
  HostPeers peers({"tcp://a:1"});
  FakeConnect connect;
  connect.refuse = "tcp://d:4";
  auto changes = peers.Follow({{"host-1", "tcp://c:3"}, {"host-2", "tcp://d:4"}}, connect.fn());
  ASSERT_FALSE(changes.ok());
  EXPECT_TRUE(absl::IsUnavailable(changes.status())) << changes.status();
  EXPECT_NE(changes.status().message().find("host-2 at tcp://d:4"), std::string::npos) << changes.status();
  EXPECT_EQ(peers.Peer(1), "host-1@tcp://c:3") << "the host connected before the failure is followed";
  EXPECT_EQ(peers.Peer(2), "");
  EXPECT_EQ(peers.size(), 2);
  // A connection that already exists (the same peer and endpoint) is not an error.
  HostPeers again({"tcp://a:1"});
  auto ok = again.Follow({{"host-1", "tcp://c:3"}}, [](const std::string&, const std::string&) {
    return absl::AlreadyExistsError("peer exists");
  });
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(again.Peer(1), "host-1@tcp://c:3");
}

TEST(HostPeers, FixedNamesAreThePeers) {
  std::unique_ptr<HostPeers> peers = HostPeers::Fixed({"h0", "h1"});
  EXPECT_EQ(peers->size(), 2);
  EXPECT_EQ(peers->Peer(1), "h1");
}

// --- the data path over in-process hosts

gpu::ModelConfig TinyModel() {
  gpu::ModelConfig config;
  config.layers = 2;
  config.d_model = 8;
  config.heads = 2;
  config.d_ff = 16;
  config.experts = 2;
  config.moe_every = 1;
  config.context = 4;
  return config;
}

int DenseShards(const gpu::ModelConfig& config) {
  return static_cast<int>(cluster::DenseShardParams(gpu::ParamInfos(config)).size());
}

// The coordinator's table with every actor on `host`, and the endpoints it knows.
cluster::DecodedTable AllOn(const gpu::ModelConfig& config, const std::string& host, uint64_t epoch,
                                Endpoints endpoints) {
  cluster::ModelShape shape{static_cast<uint32_t>(cluster::SwitchLayerCount(config)),
                                static_cast<uint32_t>(config.experts), static_cast<uint32_t>(DenseShards(config))};
  cluster::PlacementTable table(shape);
  EXPECT_TRUE(table.Initialize({host}).ok());
  cluster::DecodedTable decoded;
  decoded.epoch = epoch;
  decoded.shape = shape;
  decoded.entries = table.entries();
  decoded.endpoints = std::move(endpoints);
  return decoded;
}

// A host that answers every request and counts them.
struct CountingHost {
  std::atomic<int> answered{0};
  std::unique_ptr<transport::RpcNode> node;

  void Start(transport::InProcNetwork& net, const std::string& name) {
    auto rpc = test_support::ServeInProc(
        net, name, [this](transport::DecodedMessage request, transport::Responder responder) {
          ++answered;
          capnp::MallocMessageBuilder reply;
          reply.initRoot<proto::Envelope>().setKind(request.envelope().getKind());
          responder.Reply(reply);
        });
    ASSERT_TRUE(rpc.ok()) << rpc.status();
    node = *std::move(rpc);
  }
};

TEST(HostPeersDataPath, AHostThatJoinedLaterGetsTheStepMessagesAndDensePushes) {
  const gpu::ModelConfig config = TinyModel();
  const int shards = DenseShards(config);
  transport::InProcNetwork net;
  CountingHost hosts[3];
  for (int h = 0; h < 3; ++h) hosts[h].Start(net, "host-" + std::to_string(h));
  auto t = net.CreateTransport("trainer-0");
  ASSERT_TRUE(t.ok());
  HostPeers peers({"inproc://host-0", "inproc://host-1"});
  for (int h = 0; h < 2; ++h) ASSERT_TRUE((*t)->Connect(peers.Peer(h), "inproc://host-" + std::to_string(h)).ok());
  auto rpc = transport::RpcNode::Create(*std::move(t), {}, nullptr);
  ASSERT_TRUE(rpc.ok());

  cluster::LivePlacement placement(std::make_unique<cluster::StaticPlacement>(config, 2));
  StepClient steps(rpc->get(), &peers, 4, "trainer-0", absl::Seconds(10));
  steps.set_guard(nullptr, [&](uint64_t step) { return cluster::HostsInUse(placement, config, shards, step); });
  DenseParamClient dense(config, rpc->get(), &placement, &peers, "trainer-0", absl::Seconds(10));
  ASSERT_TRUE(steps.Commit(1, {}).ok());
  EXPECT_EQ(hosts[0].answered.load() + hosts[1].answered.load(), 2);

  // host-2 registered after the trainer started; the coordinator moved every actor to it.
  const cluster::DecodedTable table = AllOn(
      config, "host-2", 5,
      {{"host-0", "inproc://host-0"}, {"host-1", "inproc://host-1"}, {"host-2", "inproc://host-2"}});
  EXPECT_FALSE(cluster::CoordinatorPlacement::Create(config, shards, peers.size(), table).ok())
      << "a table naming an unknown host is refused until the host set follows it";
  auto changes = peers.Follow(table.endpoints, [&](const std::string& peer, const std::string& endpoint) {
    return (*rpc)->transport().Connect(peer, endpoint);
  });
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->size(), 1u);
  auto followed = cluster::CoordinatorPlacement::Create(config, shards, peers.size(), table);
  ASSERT_TRUE(followed.ok()) << followed.status();
  placement.Replace(*std::move(followed));
  EXPECT_EQ(cluster::HostsInUse(placement, config, shards, 1), (std::vector<int>{2}));

  const int before0 = hosts[0].answered.load(), before1 = hosts[1].answered.load();
  ASSERT_TRUE(steps.Commit(2, {}).ok());
  ASSERT_TRUE(steps.Apply(2, 1.0f, 1e-3f).ok());
  auto backend = gpu::CreateBackend(gpu::Device::Cpu());
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto grads = gpu::ParamBlock::Create(backend->get(), gpu::ParamInfos(config));
  ASSERT_TRUE(grads.ok()) << grads.status();
  ASSERT_TRUE((*backend)->Zero((*grads)->data(), static_cast<size_t>((*grads)->size()) * sizeof(float)).ok());
  std::vector<uint32_t> every_param(gpu::ParamInfos(config).size());
  for (size_t p = 0; p < every_param.size(); ++p) every_param[p] = static_cast<uint32_t>(p);
  gpu::StepContext ctx;
  ctx.step = 2;
  ASSERT_TRUE(dense.GradsReady(ctx, every_param, **grads).ok());
  ASSERT_TRUE(dense.Flush().ok());
  EXPECT_EQ(hosts[2].answered.load(), 2 + shards) << "commit, apply and one push per dense shard";
  EXPECT_EQ(hosts[0].answered.load(), before0);
  EXPECT_EQ(hosts[1].answered.load(), before1);
}

}  // namespace
}  // namespace sy::trainer
