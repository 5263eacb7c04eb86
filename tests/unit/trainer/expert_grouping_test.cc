// The in-process executor computes all buckets of a layer in one grouped call;
// the determinism promise needs that to give the same bits as running each
// expert's bucket alone (which is what an expert host does): outputs, input
// gradients and weight gradients are compared bit for bit.
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "gpu/model/inprocess_executor.h"
#include "gpu/model/model.h"

namespace sy::trainer {
namespace {

TEST(ExpertGroupingTest, GroupedCallEqualsPerExpertCallsBitForBit) {
  gpu::ModelConfig config;
  config.layers = 2;
  config.d_model = 16;
  config.heads = 2;
  config.d_ff = 48;
  config.experts = 4;
  config.moe_every = 1;
  config.context = 8;
  config.expert_dropout = 0.3f;  // masks keyed per expert must match too
  auto backend = *gpu::CreateBackend(gpu::Device::Cpu(), {2});
  auto model = *gpu::Model::Create(config, backend.get(), 3);
  const int C = config.d_model;
  const std::vector<int> rows = {5, 0, 17, 9};
  int total = 0;
  for (int r : rows) total += r;
  std::vector<float> in(total * C), dout(total * C);
  for (size_t i = 0; i < in.size(); ++i) {
    in[i] = std::sin(0.37f * static_cast<float>(i));
    dout[i] = std::cos(0.11f * static_cast<float>(i));
  }
  const gpu::ExpertCall base{9, 4, 1, 1, true, config.expert_dropout, nullptr};

  // Grouped: one call with every bucket.
  auto grouped_grads = *model->NewGradBlock();
  std::vector<float> out_g(total * C), din_g(total * C);
  {
    gpu::InProcessExpertExecutor executor(config, &model->params());
    std::vector<gpu::ExpertBucket> fwd;
    std::vector<gpu::ExpertBucketGrad> bwd;
    int offset = 0;
    for (int e = 0; e < config.experts; ++e) {
      fwd.push_back({e, rows[e], in.data() + offset * C, out_g.data() + offset * C});
      bwd.push_back({e, rows[e], dout.data() + offset * C, din_g.data() + offset * C});
      offset += rows[e];
    }
    gpu::ExpertCall call = base;
    call.grads = grouped_grads.get();
    ASSERT_TRUE(executor.Forward(call, fwd).ok());
    ASSERT_TRUE(executor.Backward(call, bwd).ok());
  }
  // Alone: each expert's bucket in its own forward/backward, into its own gradient block.
  auto alone_grads = *model->NewGradBlock();
  std::vector<float> out_a(total * C), din_a(total * C);
  int offset = 0;
  for (int e = 0; e < config.experts; ++e) {
    gpu::InProcessExpertExecutor executor(config, &model->params());
    gpu::ExpertCall call = base;
    call.grads = alone_grads.get();
    const gpu::ExpertBucket f{e, rows[e], in.data() + offset * C, out_a.data() + offset * C};
    const gpu::ExpertBucketGrad b{e, rows[e], dout.data() + offset * C, din_a.data() + offset * C};
    ASSERT_TRUE(executor.Forward(call, {&f, 1}).ok());
    ASSERT_TRUE(executor.Backward(call, {&b, 1}).ok());
    offset += rows[e];
  }
  EXPECT_EQ(0, std::memcmp(out_g.data(), out_a.data(), out_g.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(din_g.data(), din_a.data(), din_g.size() * sizeof(float)));
  std::vector<float> g1, g2;
  ASSERT_TRUE(grouped_grads->CopyToHost(&g1).ok());
  ASSERT_TRUE(alone_grads->CopyToHost(&g2).ok());
  ASSERT_EQ(g1.size(), g2.size());
  EXPECT_EQ(0, std::memcmp(g1.data(), g2.data(), g1.size() * sizeof(float)));
  float nonzero = 0;
  for (float v : g1) nonzero += v != 0.0f ? 1.0f : 0.0f;
  EXPECT_GT(nonzero, 0) << "the expert gradients must not be trivially zero";
}

}  // namespace
}  // namespace sy::trainer
