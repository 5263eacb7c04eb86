// The coordinator's door with cluster keys, over real CurveZMQ sockets on loopback: a
// peer without a listed key gets nothing through (no answer, no change); an authenticated
// peer of the wrong role, or one registering under another node's name, gets
// PERMISSION_DENIED, counted in sy_refused_total{reason="permission"}, and changes nothing.
#include <filesystem>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/transport/envelope_codec.h"
#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "proto/admin.capnp.h"
#include "proto/checkpoint.capnp.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/cluster_keys.h"
#include "services/coordinator/coordinator_service.h"

namespace sy::coordinator {
namespace {

namespace fs = std::filesystem;

class AuthDoorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sy-auth-door-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    ASSERT_TRUE(cluster::WriteClusterKeys(dir_ + "/keys", 2, 1, 1).ok());
    CoordinatorOptions options;
    options.listen = "tcp://127.0.0.1:0";
    options.db_path = dir_ + "/db";
    options.expected_hosts = 2;
    options.security.keys_dir = dir_ + "/keys";
    auto service = CoordinatorService::Start(options, &registry_);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
  }
  void TearDown() override {
    service_.reset();
    fs::remove_all(dir_);
  }

  // An RPC client connected to the coordinator as node `name` of the key directory (routing
  // id `name`, or "name@tag"), or without keys when `name` is empty (routing id "intruder").
  std::unique_ptr<transport::RpcNode> Client(const std::string& name, const std::string& tag = "") {
    transport::ZmqOptions zmq;
    zmq.node_id = name.empty() ? "intruder" : tag.empty() ? name : name + "@" + tag;
    if (!name.empty()) zmq.curve = *cluster::LoadNodeCurve({dir_ + "/keys", false}, name);
    auto t = transport::ZmqTransport::Create(zmq);
    EXPECT_TRUE(t.ok());
    EXPECT_TRUE((*t)->Connect("coordinator", service_->endpoint()).ok());
    transport::RpcOptions options;
    options.attempt_timeout = absl::Milliseconds(100);
    return *transport::RpcNode::Create(*std::move(t), options, nullptr);
  }

  static absl::Status Register(transport::RpcNode& node, const std::string& as) {
    capnp::MallocMessageBuilder b;
    auto envelope = b.initRoot<proto::Envelope>();
    envelope.setKind(proto::MessageKind::REGISTER);
    auto req = envelope.getBody().initAs<proto::coordinator::RegisterRequest>();
    req.setNodeId(as);
    req.setRole(proto::coordinator::Role::EXPERT_HOST);
    req.setEndpoint("tcp://127.0.0.1:9");
    req.setIncarnation(1);
    auto shape = req.initShape();
    shape.setNumSwitchLayers(1);
    shape.setNumExperts(4);
    shape.setNumDenseShards(2);
    return node.Call({"coordinator", transport::Route::kConnected}, b, {}, absl::Now() + absl::Milliseconds(800))
        .status();
  }

  static absl::Status Chunk(transport::RpcNode& node) {
    capnp::MallocMessageBuilder b;
    auto envelope = b.initRoot<proto::Envelope>();
    envelope.setKind(proto::MessageKind::CHECKPOINT_CHUNK);
    envelope.getBody().initAs<proto::checkpoint::ChunkRequest>().setCheckpointId(1);
    return node.Call({"coordinator", transport::Route::kConnected}, b, {}, absl::Now() + absl::Milliseconds(800))
        .status();
  }

  // Hosts the coordinator knows, asked as operator-0.
  uint32_t HostsKnown() {
    auto op = Client("operator-0", "status");
    capnp::MallocMessageBuilder b;
    auto envelope = b.initRoot<proto::Envelope>();
    envelope.setKind(proto::MessageKind::ADMIN);
    envelope.getBody().initAs<proto::admin::AdminRequest>().setStatus();
    auto reply = op->Call({"coordinator", transport::Route::kConnected}, b, {}, absl::Now() + absl::Seconds(5));
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return 999;
    return reply->Body<proto::admin::AdminReply>()->getStatus().getHostsTotal();
  }

  double Refused() {
    return registry_.GetCounter("sy_refused_total", "", {{"reason", "permission"}}).value();
  }

  std::string dir_;
  metrics::Registry registry_;
  std::unique_ptr<CoordinatorService> service_;
};

TEST_F(AuthDoorTest, AnUnkeyedPeerGetsNothingThroughAndChangesNothing) {
  auto intruder = Client("");
  EXPECT_EQ(Register(*intruder, "host-0").code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(Chunk(*intruder).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(HostsKnown(), 0u);
}

TEST_F(AuthDoorTest, TheWrongRoleIsDeniedCountedAndChangesNothing) {
  auto trainer = Client("trainer-0");
  const absl::Status as_host = Register(*trainer, "host-0");
  EXPECT_EQ(as_host.code(), absl::StatusCode::kPermissionDenied) << as_host;
  const absl::Status chunk = Chunk(*trainer);
  EXPECT_EQ(chunk.code(), absl::StatusCode::kPermissionDenied) << chunk;
  auto op = Client("operator-0");
  EXPECT_EQ(Register(*op, "host-0").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Refused(), 3);
  EXPECT_EQ(HostsKnown(), 0u);
}

TEST_F(AuthDoorTest, AHostKeyRegistersOnlyAsItsOwnHost) {
  auto host1 = Client("host-1");
  const absl::Status other = Register(*host1, "host-0");
  EXPECT_EQ(other.code(), absl::StatusCode::kPermissionDenied) << other;
  EXPECT_THAT(other.message(), ::testing::HasSubstr("may not speak for node 'host-0'"));
  EXPECT_EQ(Refused(), 1);
  EXPECT_EQ(HostsKnown(), 0u);
  EXPECT_TRUE(Register(*host1, "host-1").ok());
  EXPECT_EQ(HostsKnown(), 1u);
}

}  // namespace
}  // namespace sy::coordinator
