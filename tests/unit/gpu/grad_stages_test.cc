// BackwardStages and the model's GradListener: every parameter in one stage, in the
// order backward reaches them, and each stage's gradients already final when the
// listener hears of them (what lets a trainer send them while backward goes on).
#include "gpu/model/grad_stages.h"

#include <map>
#include <string>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/model/model.h"
#include "gtest/gtest.h"

namespace sy::gpu {
namespace {

ModelConfig Tiny() {
  ModelConfig cfg;
  cfg.layers = 3;
  cfg.d_model = 8;
  cfg.heads = 2;
  cfg.d_ff = 16;
  cfg.experts = 4;
  cfg.moe_every = 2;  // layers 0, 2 dense; layer 1 Switch
  cfg.context = 8;
  return cfg;
}

std::vector<std::string> Names(const ModelConfig& cfg, const std::vector<uint32_t>& stage) {
  const std::vector<ParamInfo> infos = ParamInfos(cfg);
  std::vector<std::string> names;
  for (uint32_t p : stage) names.push_back(infos[p].name);
  return names;
}

TEST(BackwardStages, EveryParameterOnceFromTheFinalNormToTheEmbeddings) {
  const ModelConfig cfg = Tiny();
  const auto stages = BackwardStages(cfg);
  ASSERT_EQ(stages.size(), 5u);
  EXPECT_EQ(Names(cfg, stages[0]), (std::vector<std::string>{"lnf_w", "lnf_b"}));
  EXPECT_EQ(Names(cfg, stages[4]), (std::vector<std::string>{"wte", "wpe"}));
  for (int k = 1; k <= 3; ++k) {
    const std::string prefix = "layer" + std::to_string(3 - k) + ".";
    for (const std::string& name : Names(cfg, stages[k])) EXPECT_EQ(name.rfind(prefix, 0), 0u) << name;
  }
  EXPECT_EQ(Names(cfg, stages[2]).back(), "layer1.expert_b_out");  // the Switch layer's experts too
  std::vector<int> seen(ParamInfos(cfg).size(), 0);
  for (const auto& stage : stages) {
    for (uint32_t p : stage) ++seen[p];
  }
  for (size_t p = 0; p < seen.size(); ++p) EXPECT_EQ(seen[p], 1) << ParamInfos(cfg)[p].name;
}

// Keeps a copy of each stage's gradients as they were when it was told.
class Recorder : public GradListener {
 public:
  absl::Status GradsReady(const StepContext& ctx, absl::Span<const uint32_t> params, const ParamBlock& grads) override {
    std::vector<float> host;
    if (absl::Status s = grads.CopyToHost(&host); !s.ok()) return s;
    for (uint32_t p : params) {
      const ParamInfo& info = grads.infos()[p];
      told[p] = std::vector<float>(host.begin() + info.offset, host.begin() + info.offset + info.numel);
    }
    order.push_back(std::vector<uint32_t>(params.begin(), params.end()));
    steps.push_back(ctx.step);
    if (fail_at_call == static_cast<int>(order.size())) return absl::UnavailableError("host gone");
    return absl::OkStatus();
  }
  std::map<uint32_t, std::vector<float>> told;
  std::vector<std::vector<uint32_t>> order;
  std::vector<int64_t> steps;
  int fail_at_call = 0;
};

// A tiny model on `threads` threads that tells `recorder`, and one batch of 2 x 8 tokens.
struct ListenedModel {
  explicit ListenedModel(int threads, Recorder* recorder)
      : backend(CreateCpuBackend(BackendOptions{threads})),
        model(Model::Create(Tiny(), backend.get(), 7).value()),
        grads(model->NewGradBlock().value()) {
    model->set_grad_listener(recorder);
    for (int i = 0; i < 16; ++i) {
      x.push_back((i * 31 + 5) % 256);
      y.push_back((i * 59 + 1) % 256);
    }
  }
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<ParamBlock> grads;
  std::vector<int32_t> x, y;
};

TEST(GradListener, HearsEachStageInOrderWithItsFinalGradients) {
  const ModelConfig cfg = Tiny();
  Recorder recorder;
  ListenedModel t(2, &recorder);
  auto& [backend, model, grads, x, y] = t;
  StepContext ctx;
  ctx.step = 12;
  ctx.micro_batch = 1;
  ASSERT_TRUE(model->ForwardBackward(x, y, 2, 8, ctx, 0.5f, grads.get()).ok());
  EXPECT_EQ(recorder.order, BackwardStages(cfg));
  EXPECT_EQ(recorder.steps, std::vector<int64_t>(5, 12));
  std::vector<float> final_grads;
  ASSERT_TRUE(grads->CopyToHost(&final_grads).ok());
  int nonzero = 0;
  for (const auto& [p, values] : recorder.told) {
    const ParamInfo& info = grads->infos()[p];
    const std::vector<float> now(final_grads.begin() + info.offset, final_grads.begin() + info.offset + info.numel);
    EXPECT_EQ(values, now) << info.name << " changed after its stage was told";
    for (float v : now) nonzero += v != 0.0f;
  }
  EXPECT_GT(nonzero, 100);  // real gradients, not a zeroed block

  // Without a listener nothing changes: the same gradients, bit for bit.
  model->set_grad_listener(nullptr);
  auto again = model->NewGradBlock().value();
  ASSERT_TRUE(model->ForwardBackward(x, y, 2, 8, ctx, 0.5f, again.get()).ok());
  std::vector<float> again_host;
  ASSERT_TRUE(again->CopyToHost(&again_host).ok());
  EXPECT_EQ(again_host, final_grads);
}

TEST(GradListener, AnErrorStopsBackwardAndIsTheResult) {
  Recorder recorder;
  recorder.fail_at_call = 2;
  ListenedModel t(1, &recorder);
  const auto result = t.model->ForwardBackward(t.x, t.y, 2, 8, StepContext{}, 1.0f, t.grads.get());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(recorder.order.size(), 2u);  // backward went no further
}

}  // namespace
}  // namespace sy::gpu
