// RemoteExpertExecutor against in-process hosts: the buckets of a replicated
// expert go to replica m % n for micro-batch m, forward and backward alike (the
// backward must reach the replica that kept the forward's state), and an
// unreplicated expert always goes to its one host.
#include "services/trainer/remote_expert_executor.h"

#include <gtest/gtest.h>

#include <capnp/message.h>

#include <algorithm>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/inproc_transport.h"
#include "common/transport/rpc.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/step_wire.h"
#include "tests/support/inproc_node.h"

namespace sy::trainer {
namespace {

constexpr int kHosts = 3;

// Expert 1 of every layer is replicated on hosts 1 and 2; every other expert lives on host 0.
class ReplicatedExpertOne : public cluster::Placement {
 public:
  int num_hosts() const override { return kHosts; }
  uint64_t epoch() const override { return 0; }
  int HostOfExpert(int layer, int expert) const override { return ExpertReplicas(layer, expert)[0]; }
  std::vector<int> ExpertReplicas(int, int expert) const override {
    return expert == 1 ? std::vector<int>{1, 2} : std::vector<int>{0};
  }
  int HostOfDenseShard(int) const override { return 0; }
};

// (host, message kind, micro-batch, expert) of one bucket a host answered.
using Served = std::tuple<int, proto::MessageKind, uint32_t, uint32_t>;

// Hosts that echo each bucket's tensor back and record what they served.
class EchoHosts {
 public:
  void Start(transport::InProcNetwork& net) {
    for (int h = 0; h < kHosts; ++h) {
      auto rpc = test_support::ServeInProc(net, "host-" + std::to_string(h),
                                      [this, h](transport::DecodedMessage request, transport::Responder responder) {
                                        Answer(h, std::move(request), std::move(responder));
                                      });
      ASSERT_TRUE(rpc.ok()) << rpc.status();
      nodes_.push_back(*std::move(rpc));
    }
  }

  std::vector<Served> served() {
    absl::MutexLock lock(&mu_);
    return served_;
  }

 private:
  void Answer(int host, transport::DecodedMessage request, transport::Responder responder) {
    const proto::MessageKind kind = request.envelope().getKind();
    proto::expert::BucketId::Reader bucket;
    if (kind == proto::MessageKind::EXPERT_FORWARD) {
      auto body = request.Body<proto::expert::ExpertForwardRequest>();
      if (!body.ok()) return responder.Fail(body.status());
      bucket = body->getBucket();
    } else {
      auto body = request.Body<proto::expert::ExpertBackwardRequest>();
      if (!body.ok()) return responder.Fail(body.status());
      bucket = body->getBucket();
    }
    {
      absl::MutexLock lock(&mu_);
      served_.emplace_back(host, kind, bucket.getMicroBatch(), bucket.getExpert());
    }
    capnp::MallocMessageBuilder reply;
    auto env = cluster::InitEnvelope(reply, kind);
    auto in = request.envelope().getTensors()[0];
    transport::SetTensor(env.initTensors(1)[0], "echo", in.getRole(), in.getDtype(),
                         {in.getShape()[0], in.getShape()[1]});
    responder.Reply(reply, {request.data(0)});
  }

  std::vector<std::unique_ptr<transport::RpcNode>> nodes_;
  absl::Mutex mu_;
  std::vector<Served> served_ ABSL_GUARDED_BY(mu_);
};

TEST(RemoteExpertExecutorTest, MicroBatchMGoesToReplicaMModN) {
  gpu::ModelConfig config;
  config.d_model = 4;
  transport::InProcNetwork net;
  EchoHosts hosts;
  hosts.Start(net);
  auto t = net.CreateTransport("trainer-0");
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<std::string> names;
  for (int h = 0; h < kHosts; ++h) {
    names.push_back("host-" + std::to_string(h));
    ASSERT_TRUE((*t)->Connect(names.back(), "inproc://" + names.back()).ok());
  }
  auto rpc = transport::RpcNode::Create(*std::move(t), {}, nullptr);
  ASSERT_TRUE(rpc.ok()) << rpc.status();
  auto backend = gpu::CreateBackend(gpu::Device::Cpu());
  ASSERT_TRUE(backend.ok()) << backend.status();
  ReplicatedExpertOne placement;
  RemoteExpertExecutor executor(config, backend->get(), rpc->get(), &placement, names, proto::DType::F32,
                                absl::Seconds(10));

  // The CPU backend's device memory is host memory.
  const int rows = 2;
  std::vector<float> in0(rows * 4), in1(rows * 4), out0(rows * 4), out1(rows * 4);
  for (size_t i = 0; i < in0.size(); ++i) {
    in0[i] = static_cast<float>(i);
    in1[i] = static_cast<float>(100 + i);
  }
  std::vector<Served> expected;
  for (uint32_t m = 0; m < 4; ++m) {
    gpu::ExpertCall call;
    call.step = 1;
    call.micro_batch = m;
    call.layer = 1;
    call.training = true;
    const gpu::ExpertBucket forward[] = {{0, rows, in0.data(), out0.data()}, {1, rows, in1.data(), out1.data()}};
    ASSERT_TRUE(executor.Forward(call, forward).ok());
    EXPECT_EQ(out0, in0);
    EXPECT_EQ(out1, in1);
    const gpu::ExpertBucketGrad backward[] = {{0, rows, in0.data(), out0.data()}, {1, rows, in1.data(), out1.data()}};
    ASSERT_TRUE(executor.Backward(call, backward).ok());
    const int replica = m % 2 == 0 ? 1 : 2;
    for (proto::MessageKind kind : {proto::MessageKind::EXPERT_FORWARD, proto::MessageKind::EXPERT_BACKWARD}) {
      expected.emplace_back(0, kind, m, 0u);
      expected.emplace_back(replica, kind, m, 1u);
    }
  }
  std::vector<Served> served = hosts.served();
  std::sort(served.begin(), served.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(served, expected);
}

}  // namespace
}  // namespace sy::trainer
