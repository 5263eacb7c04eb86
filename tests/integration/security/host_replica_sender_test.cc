// The expert host's replica-gradient door with cluster keys, over real CurveZMQ sockets on
// loopback: a host's key may deliver only its own contributions. host-2 naming "host-1"
// as the sender is PERMISSION_DENIED and counted; host-1 naming itself passes this check
// and meets the actor's own (it holds no replica here, so that refusal is another).
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "proto/expert.capnp.h"
#include "services/cluster/cluster_keys.h"
#include "services/cluster/envelope.h"
#include "services/expert_host/host_process.h"

namespace sy::expert_host {
namespace {

namespace fs = std::filesystem;

class HostReplicaSenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sy-replica-sender-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    ASSERT_TRUE(cluster::WriteClusterKeys(dir_ + "/keys", 3, 1, 1).ok());
    cluster::HostOptions options;
    options.model.layers = 2;
    options.model.d_model = 16;
    options.model.heads = 2;
    options.model.d_ff = 32;
    options.model.experts = 2;
    options.model.context = 8;
    options.model.micro_batch = 2;
    options.host_index = 0;
    options.num_hosts = 1;
    options.security.keys_dir = dir_ + "/keys";
    auto host = HostProcess::Start(options);
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = *std::move(host);
  }
  void TearDown() override {
    host_.reset();
    fs::remove_all(dir_);
  }

  // host-0's answer to replica gradients of expert (0, 0), step 1, micro-batch none,
  // sent with node `key`'s keys and naming `sender`.
  absl::Status Send(const std::string& key, const std::string& sender) {
    transport::ZmqOptions zmq;
    zmq.node_id = key;
    zmq.curve = *cluster::LoadNodeCurve({dir_ + "/keys", false}, key);
    auto t = transport::ZmqTransport::Create(zmq);
    EXPECT_TRUE(t.ok());
    EXPECT_TRUE((*t)->Connect("host-0", host_->endpoint()).ok());
    transport::RpcOptions rpc;
    rpc.attempt_timeout = absl::Milliseconds(200);
    auto node = *transport::RpcNode::Create(*std::move(t), rpc, nullptr);
    capnp::MallocMessageBuilder header;
    auto env = cluster::InitEnvelope(header, proto::MessageKind::REPLICA_GRADIENTS);
    auto body = env.initBody().initAs<proto::expert::ReplicaGradientsRequest>();
    cluster::ActorKey::Expert(0, 0).ToProto(body.initActor());
    body.setStep(1);
    body.setSender(sender);
    body.initMicroBatches(0);
    env.initTensors(0);
    return node->Call({"host-0", transport::Route::kConnected}, header, {}, absl::Now() + absl::Seconds(5))
        .status();
  }

  double Refused() {
    return host_->registry().GetCounter("sy_refused_total", "", {{"reason", "permission"}}).value();
  }

  std::string dir_;
  std::unique_ptr<HostProcess> host_;
};

TEST_F(HostReplicaSenderTest, AHostKeyDeliversOnlyItsOwnContributions) {
  const absl::Status forged = Send("host-2", "host-1");
  EXPECT_EQ(forged.code(), absl::StatusCode::kPermissionDenied) << forged;
  EXPECT_THAT(forged.message(), ::testing::HasSubstr("may not speak for node 'host-1'"));
  EXPECT_EQ(Refused(), 1);
  const absl::Status own = Send("host-1", "host-1");
  EXPECT_NE(own.code(), absl::StatusCode::kPermissionDenied) << own;
  EXPECT_NE(own.code(), absl::StatusCode::kDeadlineExceeded) << own;
  EXPECT_EQ(Refused(), 1);
}

}  // namespace
}  // namespace sy::expert_host
