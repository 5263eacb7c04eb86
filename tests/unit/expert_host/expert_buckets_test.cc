// ExpertBuckets, the expert unit of an expert actor: a bucket's forward and backward
// give exactly the expert unit's results on the actor's block of weights, as f32
// frames or bf16-rounded ones; a training forward is kept by micro-batch until
// dropped, an evaluation forward is not.
#include "services/expert_host/expert_buckets.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "gpu/model/bucket_codec.h"
#include "gpu/tensor.h"

namespace sy::expert_host {
namespace {

constexpr int kRows = 3;

std::vector<float> Pattern(size_t n, int salt) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.01f * static_cast<float>((i * 7 + salt) % 23) - 0.1f;
  return v;
}

class ExpertBucketsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.d_model = 8;
    config_.d_ff = 12;
    config_.heads = 2;
    config_.expert_dropout = 0.4f;
    backend_ = *gpu::CreateBackend(gpu::Device::Cpu(), {1});
    const gpu::ExpertLayout layout(config_);
    weights_ = Pattern(static_cast<size_t>(layout.size()), 1);
    std::vector<StateSegment> segments;
    for (const gpu::ExpertPart& part : layout.parts()) segments.push_back({0, kExpert, part.numel, false});
    state_ = *ParamState::Create(backend_.get(), segments, weights_, 2, {});
  }

  ForwardMsg Forward(bool training, proto::DType dtype) const {
    ForwardMsg m;
    m.step = 4;
    m.micro_batch = 1;
    m.version = 3;
    m.training = training;
    m.seed = 9;
    m.rows = kRows;
    m.dtype = dtype;
    m.in = Pattern(kRows * 8, 2);
    return m;
  }

  // The expert unit run directly on the weights: out, din and the weight gradient.
  void Expected(bool training, std::vector<float>* out, std::vector<float>* din, std::vector<float>* grad) const {
    const gpu::ExpertLayout layout(config_);
    const int C = config_.d_model, F = config_.d_ff;
    const std::vector<float> in = Pattern(kRows * C, 2), dout = Pattern(kRows * C, 3);
    std::vector<float> pre(kRows * F), act(kRows * F), scratch(kRows * F);
    const gpu::ExpertDropout dropout{training ? config_.expert_dropout : 0.0f, 9, 4, 1, kLayer, kExpert};
    out->assign(kRows * C, 0.0f);
    gpu::ExpertForward(backend_.get(), out->data(), {pre.data(), act.data()}, in.data(), kRows, C, F,
                       layout.Weights(weights_.data()), dropout);
    din->assign(kRows * C, 0.0f);
    grad->assign(static_cast<size_t>(layout.size()), 0.0f);
    gpu::ExpertBackward(backend_.get(), din->data(), layout.Grads(grad->data()), scratch.data(), dout.data(),
                        in.data(), {pre.data(), act.data()}, kRows, C, F, layout.Weights(weights_.data()), dropout);
  }

  static std::vector<float> Decoded(const transport::Frame& frame, proto::DType dtype, size_t n) {
    std::vector<float> v(n);
    EXPECT_TRUE(gpu::DecodeFloats(frame, dtype, static_cast<int64_t>(n), v.data()).ok());
    return v;
  }

  static constexpr int kLayer = 1;
  static constexpr int kExpert = 2;
  gpu::ModelConfig config_;
  std::unique_ptr<gpu::Backend> backend_;
  std::vector<float> weights_;
  std::unique_ptr<ParamState> state_;
};

TEST_F(ExpertBucketsTest, TrainingForwardAndBackwardEqualTheExpertUnit) {
  ExpertBuckets buckets(config_, kLayer, kExpert);
  std::vector<float> out, din, grad;
  Expected(true, &out, &din, &grad);
  ForwardMsg f = Forward(true, proto::DType::F32);
  absl::StatusOr<transport::Frame> outputs = buckets.Forward(*state_, f);
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  EXPECT_EQ(Decoded(*outputs, proto::DType::F32, out.size()), out);
  ASSERT_EQ(buckets.KeptRows(1), kRows);
  EXPECT_FALSE(buckets.KeptRows(0).has_value());

  BackwardMsg b;
  b.step = 4;
  b.micro_batch = 1;
  b.rows = kRows;
  b.dout = Pattern(kRows * 8, 3);
  absl::StatusOr<ExpertBuckets::Gradients> grads = buckets.Backward(*state_, b);
  ASSERT_TRUE(grads.ok()) << grads.status();
  EXPECT_EQ(Decoded(*grads->din.ToFrame(proto::DType::F32), proto::DType::F32, din.size()), din);
  std::vector<float> got(grad.size());
  std::memcpy(got.data(), grads->weights.data(), got.size() * sizeof(float));
  EXPECT_EQ(got, grad);
  EXPECT_EQ(buckets.KeptRows(1), kRows) << "kept until dropped";
  buckets.Drop(1);
  EXPECT_FALSE(buckets.KeptRows(1).has_value());
}

TEST_F(ExpertBucketsTest, EvaluationIsNotKeptAndBf16FramesAreTheRoundedOutputs) {
  ExpertBuckets buckets(config_, kLayer, kExpert);
  std::vector<float> out, din, grad;
  Expected(false, &out, &din, &grad);
  ForwardMsg f = Forward(false, proto::DType::BF16);
  absl::StatusOr<transport::Frame> outputs = buckets.Forward(*state_, f);
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  for (float& x : out) x = gpu::RoundToBf16(x);
  EXPECT_EQ(Decoded(*outputs, proto::DType::BF16, out.size()), out);
  EXPECT_FALSE(buckets.KeptRows(1).has_value());
}

}  // namespace
}  // namespace sy::expert_host
