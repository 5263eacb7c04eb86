// The expert unit: finite-difference gradients, where an expert's parameters sit
// (its block and its slices of the model's stacked parameters), and a Switch layer
// driven through a host-side executor (as a remote expert host would run it) gives
// exactly the in-process result.
#include <cstring>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gpu/cpu/cpu_backend.h"
#include "gpu/model/expert.h"
#include "gpu/model/model.h"
#include "gtest/gtest.h"
#include "tests/unit/gpu/grad_check.h"

namespace sy::gpu {
namespace {

using testing::Dot;
using testing::ExpectDirectionalGrad;
using testing::RandomVector;

TEST(ExpertUnitTest, GradientsWithExpertDropout) {
  auto be = CreateCpuBackend(BackendOptions{2});
  const int n = 5, C = 4, F = 6;
  auto in = RandomVector(n * C, 40), w_in = RandomVector(C * F, 41), b_in = RandomVector(F, 42);
  auto w_out = RandomVector(F * C, 43), b_out = RandomVector(C, 44);
  const auto dout = RandomVector(n * C, 45);
  const ExpertDropout dropout{0.4f, 9, 3, 2, 1, 5};
  auto f = [&](const std::vector<float>& x, const std::vector<float>& wi, const std::vector<float>& bi,
               const std::vector<float>& wo, const std::vector<float>& bo) {
    std::vector<float> out(n * C), pre(n * F), act(n * F);
    ExpertForward(be.get(), out.data(), {pre.data(), act.data()}, x.data(), n, C, F,
                  {wi.data(), bi.data(), wo.data(), bo.data()}, dropout);
    return Dot(out, dout);
  };
  std::vector<float> out(n * C), pre(n * F), act(n * F), scratch(n * F), din(n * C);
  std::vector<float> gwi(C * F, 0), gbi(F, 0), gwo(F * C, 0), gbo(C, 0);
  const ExpertWeights w{w_in.data(), b_in.data(), w_out.data(), b_out.data()};
  ExpertForward(be.get(), out.data(), {pre.data(), act.data()}, in.data(), n, C, F, w, dropout);
  int zeros = 0;
  for (float a : act) zeros += a == 0.0f;
  EXPECT_GT(zeros, 0);  // the dropout mask is active
  ExpertBackward(be.get(), din.data(), {gwi.data(), gbi.data(), gwo.data(), gbo.data()}, scratch.data(), dout.data(),
                 in.data(), {pre.data(), act.data()}, n, C, F, w, dropout);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(v, w_in, b_in, w_out, b_out); }, in, din, 46);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(in, v, b_in, w_out, b_out); }, w_in, gwi, 47);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(in, w_in, v, w_out, b_out); }, b_in, gbi, 48);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(in, w_in, b_in, v, b_out); }, w_out, gwo, 49);
  ExpectDirectionalGrad([&](const std::vector<float>& v) { return f(in, w_in, b_in, w_out, v); }, b_out, gbo, 50);
}

TEST(ExpertLayoutTest, BlockPartsAndModelSlices) {
  ModelConfig cfg;
  cfg.layers = 2;
  cfg.d_model = 4;
  cfg.heads = 2;
  cfg.d_ff = 6;
  cfg.experts = 3;
  cfg.moe_every = 2;  // layer 1 is a Switch layer, layer 0 dense
  const int64_t C = 4, F = 6;
  const ExpertLayout layout(cfg);
  EXPECT_EQ(layout.size(), C * F + F + F * C + C);
  const char* names[] = {"expert_w_in", "expert_b_in", "expert_w_out", "expert_b_out"};
  const int64_t offsets[] = {0, C * F, C * F + F, C * F + F + F * C};
  const int64_t numels[] = {C * F, F, F * C, C};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_STREQ(layout.parts()[i].name, names[i]);
    EXPECT_EQ(layout.parts()[i].offset, offsets[i]);
    EXPECT_EQ(layout.parts()[i].numel, numels[i]);
  }
  std::vector<float> block(static_cast<size_t>(layout.size()));
  const ExpertWeights w = layout.Weights(block.data());
  const ExpertGrads g = layout.Grads(block.data());
  EXPECT_EQ(w.w_in, block.data());
  EXPECT_EQ(w.b_in, block.data() + offsets[1]);
  EXPECT_EQ(w.w_out, block.data() + offsets[2]);
  EXPECT_EQ(w.b_out, block.data() + offsets[3]);
  EXPECT_EQ(g.b_out, block.data() + offsets[3]);

  auto be = CreateCpuBackend(BackendOptions{1});
  auto params = ParamBlock::Create(be.get(), ParamInfos(cfg)).value();
  const ExpertWeights e2 = layout.ModelWeights(*params, 1, 2);
  EXPECT_EQ(e2.w_in, params->Get("layer1.expert_w_in") + 2 * C * F);
  EXPECT_EQ(e2.b_in, params->Get("layer1.expert_b_in") + 2 * F);
  EXPECT_EQ(e2.w_out, params->Get("layer1.expert_w_out") + 2 * F * C);
  EXPECT_EQ(e2.b_out, params->Get("layer1.expert_b_out") + 2 * C);
  EXPECT_EQ(layout.ModelGrads(*params, 1, 2).w_out, e2.w_out);
  for (float* slice : layout.ModelSlices(*params, 0, 1)) EXPECT_EQ(slice, nullptr);  // layer 0 is dense
}

// Runs each bucket like an expert host: copies it to host memory, runs the expert
// unit on its own backend with its own copy of the weights, keeps the gradients.
class HostSideExecutor : public ExpertExecutor {
 public:
  HostSideExecutor(const ModelConfig& cfg, const ParamBlock& params) : cfg_(cfg), be_(CreateCpuBackend({2})) {
    for (int l = 0; l < cfg.layers; ++l) {
      if (!cfg.IsSwitchLayer(l)) continue;
      for (const char* part : {"expert_w_in", "expert_b_in", "expert_w_out", "expert_b_out"}) {
        const std::string name = absl::StrCat("layer", l, ".", part);
        const TensorView v = params.Find(name).value();
        std::vector<float>& w = weights_[name];
        w.assign(v.f32(), v.f32() + v.numel());
        grads_[name].assign(v.numel(), 0.0f);
      }
    }
  }

  absl::Status Forward(const ExpertCall& call, absl::Span<const ExpertBucket> buckets) override {
    auto& saved = saved_[call.layer];
    saved.clear();
    for (const ExpertBucket& b : buckets) {
      Saved s{b.expert, std::vector<float>(b.in, b.in + b.rows * cfg_.d_model),
              std::vector<float>(b.rows * cfg_.d_ff), std::vector<float>(b.rows * cfg_.d_ff)};
      std::vector<float> out(b.rows * cfg_.d_model);
      ExpertForward(be_.get(), out.data(), {s.pre.data(), s.act.data()}, s.in.data(), b.rows, cfg_.d_model,
                    cfg_.d_ff, Weights(call.layer, b.expert), Dropout(call, b.expert));
      std::memcpy(b.out, out.data(), out.size() * sizeof(float));
      saved.push_back(std::move(s));
    }
    return absl::OkStatus();
  }

  absl::Status Backward(const ExpertCall& call, absl::Span<const ExpertBucketGrad> buckets) override {
    const int C = cfg_.d_model, F = cfg_.d_ff;
    const std::string p = absl::StrCat("layer", call.layer, ".");
    for (size_t i = 0; i < buckets.size(); ++i) {
      const ExpertBucketGrad& b = buckets[i];
      Saved& s = saved_[call.layer][i];
      const int64_t e = b.expert;
      std::vector<float> dout(b.dout, b.dout + b.rows * C), din(b.rows * C), scratch(b.rows * F);
      const ExpertGrads g{grads_[p + "expert_w_in"].data() + e * C * F, grads_[p + "expert_b_in"].data() + e * F,
                          grads_[p + "expert_w_out"].data() + e * F * C, grads_[p + "expert_b_out"].data() + e * C};
      ExpertBackward(be_.get(), din.data(), g, scratch.data(), dout.data(), s.in.data(), {s.pre.data(), s.act.data()},
                     b.rows, C, F, Weights(call.layer, b.expert), Dropout(call, b.expert));
      std::memcpy(b.din, din.data(), din.size() * sizeof(float));
    }
    return absl::OkStatus();
  }

  std::map<std::string, std::vector<float>> grads_;

 private:
  struct Saved {
    int expert;
    std::vector<float> in, pre, act;
  };
  ExpertWeights Weights(int layer, int64_t e) {
    const std::string p = absl::StrCat("layer", layer, ".");
    const int64_t C = cfg_.d_model, F = cfg_.d_ff;
    return {weights_[p + "expert_w_in"].data() + e * C * F, weights_[p + "expert_b_in"].data() + e * F,
            weights_[p + "expert_w_out"].data() + e * F * C, weights_[p + "expert_b_out"].data() + e * C};
  }
  ExpertDropout Dropout(const ExpertCall& call, int expert) const {
    return {call.training ? call.expert_dropout : 0.0f, call.seed, call.step, call.micro_batch, call.layer, expert};
  }
  ModelConfig cfg_;
  std::unique_ptr<Backend> be_;
  std::map<std::string, std::vector<float>> weights_;
  std::map<int, std::vector<Saved>> saved_;
};

TEST(ExpertExecutorTest, HostSideExpertsEqualInProcessSwitchLayer) {
  ModelConfig cfg;
  cfg.layers = 2;
  cfg.d_model = 16;
  cfg.heads = 2;
  cfg.d_ff = 32;
  cfg.experts = 4;
  cfg.context = 16;
  cfg.capacity_factor = 1.0f;  // some tokens are dropped
  auto be = CreateCpuBackend(BackendOptions{2});
  auto local = Model::Create(cfg, be.get(), 5).value();
  auto remote_params = Model::Create(cfg, be.get(), 5).value();  // only to read identical weights
  HostSideExecutor executor(cfg, remote_params->params());
  auto remote = Model::Create(cfg, be.get(), 5, &executor).value();
  const int B = 2, T = 16;
  std::vector<int32_t> x(B * T), y(B * T);
  for (int i = 0; i < B * T; ++i) {
    x[i] = (i * 37 + 11) % 256;
    y[i] = (i * 53 + 7) % 256;
  }
  const StepContext ctx{3, 7, 1, true};
  auto g_local = local->NewGradBlock().value();
  auto g_remote = remote->NewGradBlock().value();
  auto s_local = local->ForwardBackward(x, y, B, T, ctx, 0.5f, g_local.get()).value();
  auto s_remote = remote->ForwardBackward(x, y, B, T, ctx, 0.5f, g_remote.get()).value();
  EXPECT_GT(s_local.dropped_tokens, 0);
  EXPECT_EQ(s_local.loss, s_remote.loss);
  EXPECT_EQ(s_local.expert_counts, s_remote.expert_counts);
  for (size_t i = 0; i < g_local->infos().size(); ++i) {
    const ParamInfo& info = g_local->infos()[i];
    const float* a = g_local->data() + info.offset;
    const bool is_expert = info.name.find("expert_") != std::string::npos;
    const float* b = is_expert ? executor.grads_.at(info.name).data() : g_remote->data() + info.offset;
    EXPECT_EQ(std::memcmp(a, b, info.numel * sizeof(float)), 0) << info.name;
  }
}

}  // namespace
}  // namespace sy::gpu
