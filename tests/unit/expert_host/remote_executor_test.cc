// RemoteExpertExecutor against a HostService over the in-process transport: the
// remote round trip gives the in-process executor's bits (f32 wire), and a
// refused request comes back with the host, layer, expert and step in the error.
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/transport/inproc_transport.h"
#include "gpu/model/inprocess_executor.h"
#include "gpu/model/model.h"
#include "services/expert_host/host_service.h"
#include "services/trainer/remote_expert_executor.h"

namespace sy::expert_host {
namespace {

gpu::ModelConfig Config() {
  gpu::ModelConfig c;
  c.layers = 2;
  c.d_model = 8;
  c.heads = 2;
  c.d_ff = 24;
  c.experts = 3;
  c.moe_every = 1;
  c.context = 4;
  c.expert_dropout = 0.25f;
  return c;
}

class RemoteExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = *gpu::CreateBackend(gpu::Device::Cpu(), {1});
    HostConfig config;
    config.model = Config();
    config.seed = 5;
    config.micro_batches = 1;
    config.max_bucket_rows = 16;
    service_ = *HostService::Create(config, backend_.get(), &registry_);
    auto server = *net_.CreateTransport("host-0");
    ASSERT_TRUE(server->Bind("inproc://host-0").ok());
    HostService* service = service_.get();
    server_ = *transport::RpcNode::Create(std::move(server), {}, [service](transport::DecodedMessage r,
                                                                         transport::Responder responder) {
      service->Handle(std::move(r), std::move(responder));
    });
    auto client = *net_.CreateTransport("trainer-0");
    ASSERT_TRUE(client->Connect("host-0", "inproc://host-0").ok());
    client_ = *transport::RpcNode::Create(std::move(client), {}, nullptr);
  }
  void TearDown() override {
    client_->Close();
    server_->Close();
  }

  transport::InProcNetwork net_;
  metrics::Registry registry_;
  std::unique_ptr<gpu::Backend> backend_;
  std::unique_ptr<HostService> service_;
  std::unique_ptr<transport::RpcNode> server_, client_;
};

TEST_F(RemoteExecutorTest, RoundTripEqualsTheInProcessExecutor) {
  const gpu::ModelConfig config = Config();
  auto model = *gpu::Model::Create(config, backend_.get(), 5);
  cluster::StaticPlacement placement(config, 1);
  trainer::RemoteExpertExecutor remote(config, backend_.get(), client_.get(), &placement, {"host-0"},
                                       proto::DType::F32, absl::Seconds(10));
  gpu::InProcessExpertExecutor local(config, &model->params());
  const int C = config.d_model;
  const std::vector<int> rows = {4, 0, 7};
  const int total = 11;
  std::vector<float> in(total * C), dout(total * C);
  for (int i = 0; i < total * C; ++i) {
    in[i] = std::sin(0.3f * static_cast<float>(i));
    dout[i] = std::cos(0.7f * static_cast<float>(i));
  }
  std::vector<float> out_r(total * C), out_l(total * C), din_r(total * C), din_l(total * C);
  auto grads = *model->NewGradBlock();
  auto run = [&](gpu::ExpertExecutor& executor, std::vector<float>& out, std::vector<float>& din) {
    std::vector<gpu::ExpertBucket> fwd;
    std::vector<gpu::ExpertBucketGrad> bwd;
    int offset = 0;
    for (int e = 0; e < config.experts; ++e) {
      fwd.push_back({e, rows[e], in.data() + offset * C, out.data() + offset * C});
      bwd.push_back({e, rows[e], dout.data() + offset * C, din.data() + offset * C});
      offset += rows[e];
    }
    const gpu::ExpertCall call{5, 1, 0, 1, true, config.expert_dropout, grads.get()};
    ASSERT_TRUE(executor.Forward(call, fwd).ok());
    ASSERT_TRUE(executor.Backward(call, bwd).ok());
  };
  run(remote, out_r, din_r);
  run(local, out_l, din_l);
  EXPECT_EQ(0, std::memcmp(out_r.data(), out_l.data(), out_r.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(din_r.data(), din_l.data(), din_r.size() * sizeof(float)));
  EXPECT_GT(remote.TakeBytesSent(), static_cast<uint64_t>(2 * total * C * sizeof(float)));
}

TEST_F(RemoteExecutorTest, ARefusedBucketNamesHostLayerExpertAndStep) {
  gpu::ModelConfig wider = Config();
  wider.d_model = 16;  // the host serves d_model 8
  cluster::StaticPlacement placement(wider, 1);
  trainer::RemoteExpertExecutor remote(wider, backend_.get(), client_.get(), &placement, {"host-0"},
                                       proto::DType::BF16, absl::Seconds(10));
  std::vector<float> in(2 * 16, 0.5f), out(2 * 16);
  const gpu::ExpertBucket bucket{2, 2, in.data(), out.data()};
  const absl::Status s = remote.Forward({5, 3, 0, 0, true, 0.0f, nullptr}, {&bucket, 1});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("forward of step 3 micro-batch 0 layer 0 expert 2 on host 0"), std::string::npos) << s;
  EXPECT_NE(s.message().find("d_model"), std::string::npos) << s;
}

}  // namespace
}  // namespace sy::expert_host
