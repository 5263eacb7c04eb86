// ClusterActor on the DeterministicExecutor (manual clock) over loopback ZeroMQ:
// heartbeat failure detection happens exactly after the configured timeout (not
// before), the failed host's actors move to the survivor with a new epoch, and every
// message is handled (mailboxes end empty). Requests travel through real RpcNodes;
// the actors run only when the test steps the executor. (ZeroMQ rather than InProcTransport: two in-process transports
// replying to each other trip Abseil's lock-order checker inside InProcTransport.)
#include <filesystem>
#include <optional>

#include <gtest/gtest.h>
#include <unistd.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/actor/deterministic_executor.h"
#include "common/transport/zmq_transport.h"
#include "proto/admin.capnp.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement_codec.h"
#include "services/coordinator/checkpoint_actor.h"
#include "services/coordinator/cluster_actor.h"

namespace sy::coordinator {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class ClusterActorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = (fs::temp_directory_path() / ("sy_cluster_actor_" + std::to_string(::getpid()))).string();
    fs::remove_all(db_);
    auto store = CheckpointStore::Open(db_, {});
    ASSERT_TRUE(store.ok());
    store_ = *std::move(store);
    options_.expected_hosts = 2;
    options_.heartbeat_timeout = absl::Seconds(1);
    options_.call_timeout = absl::Seconds(10);

    auto coordinator = Zmq("coordinator");
    ASSERT_TRUE(coordinator.ok());
    auto bound = (*coordinator)->Bind("tcp://127.0.0.1:*");
    ASSERT_TRUE(bound.ok());
    endpoint_ = *bound;
    auto switchable = std::make_unique<SwitchableFaultTransport>(*std::move(coordinator));
    transport_ = switchable.get();
    auto rpc = transport::RpcNode::Create(std::move(switchable), {},
                                          [this](transport::DecodedMessage m, transport::Responder r) {
                                            cluster_->Tell(ClusterRequest{std::move(m), std::move(r), {}});
                                          });
    ASSERT_TRUE(rpc.ok());
    rpc_ = *std::move(rpc);
    checkpoints_ = std::make_shared<CheckpointActor>(executor_, options_, endpoint_, store_.get(), rpc_.get(),
                                                     [this](CheckpointEvent e) { cluster_->Tell(std::move(e)); });
    cluster_ = std::make_shared<ClusterActor>(executor_, options_, rpc_.get(), transport_, store_.get(),
                                              checkpoints_);
    auto snapshot = checkpoints_->Start();
    ASSERT_TRUE(snapshot.ok());
    ASSERT_TRUE(cluster_->Start(*snapshot).ok());
    for (const char* id : {"host-0", "host-1"}) AddHost(id);
  }
  void TearDown() override {
    for (auto& h : hosts_) h->Close();
    rpc_->Close();
    executor_.RunUntilIdle();
    cluster_.reset();
    checkpoints_.reset();
    fs::remove_all(db_);
  }

  static absl::StatusOr<std::unique_ptr<transport::ZmqTransport>> Zmq(const std::string& id) {
    transport::ZmqOptions options;
    options.node_id = id;
    return transport::ZmqTransport::Create(options);
  }

  // A host node that acknowledges whatever the coordinator sends it.
  void AddHost(const std::string& id) {
    auto t = Zmq(id);
    ASSERT_TRUE(t.ok());
    auto bound = (*t)->Bind("tcp://127.0.0.1:*");
    ASSERT_TRUE(bound.ok());
    host_endpoints_.push_back(*bound);
    ASSERT_TRUE((*t)->Connect("coordinator", endpoint_).ok());
    auto node = transport::RpcNode::Create(*std::move(t), {}, [](transport::DecodedMessage m, transport::Responder r) {
      capnp::MallocMessageBuilder b;
      b.initRoot<proto::Envelope>().setKind(m.envelope().getKind());
      r.Reply(b);
    });
    ASSERT_TRUE(node.ok());
    hosts_.push_back(*std::move(node));
  }

  // Sends from host `index` and steps the executor until the reply is in.
  absl::StatusOr<transport::DecodedMessage> Call(size_t index, capnp::MallocMessageBuilder& b) {
    struct Slot {
      absl::Mutex mu;
      std::optional<absl::StatusOr<transport::DecodedMessage>> result ABSL_GUARDED_BY(mu);
    };
    auto slot = std::make_shared<Slot>();
    hosts_[index]->CallAsync({"coordinator"}, b, {}, absl::Now() + absl::Seconds(10),
                             [slot](absl::StatusOr<transport::DecodedMessage> r) {
                               absl::MutexLock lock(&slot->mu);
                               slot->result.emplace(std::move(r));
                             });
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (absl::Now() < give_up) {
      executor_.RunUntilIdle();
      {
        absl::MutexLock lock(&slot->mu);
        if (slot->result.has_value()) return std::move(*slot->result);
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
    return absl::DeadlineExceededError("no reply");
  }

  absl::Status Register(size_t index) {
    capnp::MallocMessageBuilder b;
    auto r = cluster::InitBody<proto::coordinator::RegisterRequest>(b, proto::MessageKind::REGISTER);
    const std::string id = "host-" + std::to_string(index);
    r.setNodeId(id);
    r.setRole(proto::coordinator::Role::EXPERT_HOST);
    r.setEndpoint(host_endpoints_[index]);
    r.setIncarnation(1);
    auto shape = r.initShape();  // 6 actors
    shape.setNumSwitchLayers(1);
    shape.setNumExperts(4);
    shape.setNumDenseShards(2);
    return Call(index, b).status();
  }
  absl::Status Heartbeat(size_t index) {
    capnp::MallocMessageBuilder b;
    auto r = cluster::InitBody<proto::coordinator::HeartbeatRequest>(b, proto::MessageKind::HEARTBEAT);
    r.setNodeId("host-" + std::to_string(index));
    r.setIncarnation(1);
    return Call(index, b).status();
  }
  uint32_t HostsAlive() {
    capnp::MallocMessageBuilder b;
    cluster::InitBody<proto::admin::AdminRequest>(b, proto::MessageKind::ADMIN).setStatus();
    auto reply = Call(0, b);
    EXPECT_TRUE(reply.ok());
    return reply.ok() ? reply->Body<proto::admin::AdminReply>()->getStatus().getHostsAlive() : 0;
  }
  cluster::DecodedTable Table() {
    capnp::MallocMessageBuilder b;
    cluster::InitBody<proto::coordinator::PlacementRequest>(b, proto::MessageKind::PLACEMENT).setGet();
    auto reply = Call(0, b);
    EXPECT_TRUE(reply.ok()) << reply.status();
    auto table = cluster::TableFromProto(reply->Body<proto::coordinator::PlacementReply>()->getTable());
    EXPECT_TRUE(table.ok());
    return *table;
  }

  std::string db_;
  CoordinatorOptions options_;
  actor::DeterministicExecutor executor_;
  std::string endpoint_;
  std::vector<std::string> host_endpoints_;
  std::unique_ptr<CheckpointStore> store_;
  SwitchableFaultTransport* transport_ = nullptr;
  std::unique_ptr<transport::RpcNode> rpc_;
  std::shared_ptr<CheckpointActor> checkpoints_;
  std::shared_ptr<ClusterActor> cluster_;
  std::vector<std::unique_ptr<transport::RpcNode>> hosts_;
};

TEST_F(ClusterActorTest, SilentHostFailsExactlyAfterTheTimeoutAndItsActorsMove) {
  ASSERT_TRUE(Register(0).ok());
  ASSERT_TRUE(Register(1).ok());
  cluster::DecodedTable before = Table();
  EXPECT_EQ(before.epoch, 1u);
  EXPECT_EQ(before.entries.at(cluster::ActorKey::Expert(0, 1)), std::vector<std::string>{"host-1"});

  executor_.AdvanceTime(milliseconds(600));
  ASSERT_TRUE(Heartbeat(0).ok());  // host-0 beats at 0.6 s, host-1 stays silent
  executor_.AdvanceTime(milliseconds(400));  // t = 1.0 s: host-1 silent for exactly the timeout
  EXPECT_EQ(HostsAlive(), 2u);
  executor_.AdvanceTime(milliseconds(250));  // t = 1.25 s: past it, at the next check
  EXPECT_EQ(HostsAlive(), 1u);
  cluster::DecodedTable after = Table();
  EXPECT_EQ(after.epoch, 2u);
  for (const auto& [actor, hosts] : after.entries) EXPECT_EQ(hosts, std::vector<std::string>{"host-0"});
  executor_.AdvanceTime(milliseconds(500));  // t = 1.75 s: host-0 silent 1.15 s -> failed too
  EXPECT_EQ(HostsAlive(), 0u);
}

TEST_F(ClusterActorTest, AHostBackOnAnotherEndpointLeavesNoConnectionBehind) {
  ASSERT_TRUE(Register(0).ok());
  ASSERT_TRUE(Register(1).ok());
  EXPECT_EQ(transport_->stats().connected_peers, 2u);
  // host-0 comes back on fresh ports three times (as a restart with --listen=...:0 does).
  for (int port : {1, 2, 3}) {
    host_endpoints_[0] = "tcp://127.0.0.1:" + std::to_string(port);
    ASSERT_TRUE(Register(0).ok());
    EXPECT_EQ(transport_->stats().connected_peers, 2u) << "after move " << port;
  }
}

TEST_F(ClusterActorTest, ADeadHostLeavesNoConnectionBehindAndReconnectsWhenBack) {
  ASSERT_TRUE(Register(0).ok());
  ASSERT_TRUE(Register(1).ok());
  EXPECT_EQ(transport_->stats().connected_peers, 2u);
  executor_.AdvanceTime(milliseconds(600));
  ASSERT_TRUE(Heartbeat(0).ok());
  executor_.AdvanceTime(milliseconds(650));  // host-1 silent past the timeout: dead
  EXPECT_EQ(HostsAlive(), 1u);
  EXPECT_EQ(transport_->stats().connected_peers, 1u);  // no socket reconnecting to it forever
  ASSERT_TRUE(Register(1).ok());  // it comes back (fenced, registers again)
  EXPECT_EQ(HostsAlive(), 2u);
  EXPECT_EQ(transport_->stats().connected_peers, 2u);
  // The coordinator reaches it on the new connection.
  capnp::MallocMessageBuilder ping;
  ping.initRoot<proto::Envelope>().setKind(proto::MessageKind::PING);
  EXPECT_TRUE(rpc_->Call({"host-1@" + host_endpoints_[1], transport::Route::kConnected}, ping, {},
                         absl::Now() + absl::Seconds(10))
                  .ok());
}

TEST_F(ClusterActorTest, LoadReportReplyCarriesTheCurrentEpochAndMailboxesEndEmpty) {
  ASSERT_TRUE(Register(0).ok());
  ASSERT_TRUE(Register(1).ok());
  capnp::MallocMessageBuilder b;
  auto report = cluster::InitBody<proto::coordinator::LoadReportRequest>(b, proto::MessageKind::LOAD_REPORT, /*epoch=*/0);
  report.setTrainer("host-0");
  report.setStep(1);
  auto reply = Call(0, b);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->Body<proto::coordinator::LoadReportReply>()->getEpoch(), 1u);
  EXPECT_TRUE(executor_.RunUntilIdle() == 0);
  EXPECT_EQ(cluster_->mailbox_size(), 0u);
  EXPECT_EQ(checkpoints_->mailbox_size(), 0u);
}

}  // namespace
}  // namespace sy::coordinator
