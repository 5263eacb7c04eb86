// The whole model: parameter layout and init, config and input errors, finite-
// difference gradients (dense and Switch layers, with dropped tokens), exact
// determinism (runs, seeds, thread counts), grad_scale, routing records, training.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/model/model.h"
#include "gpu/model/optimizer.h"
#include "gtest/gtest.h"
#include "tests/unit/gpu/grad_check.h"

namespace sy::gpu {
namespace {

using testing::ExpectDirectionalGrad;

ModelConfig Tiny() {
  ModelConfig cfg;
  cfg.layers = 2;
  cfg.d_model = 8;
  cfg.heads = 2;
  cfg.d_ff = 16;
  cfg.experts = 4;
  cfg.moe_every = 2;  // layer 0 dense, layer 1 Switch
  cfg.context = 8;
  return cfg;
}

void MakeBatch(int B, int T, int salt, std::vector<int32_t>* x, std::vector<int32_t>* y) {
  x->resize(B * T);
  y->resize(B * T);
  for (int i = 0; i < B * T; ++i) {
    (*x)[i] = (i * 31 + salt * 17 + 5) % 256;
    (*y)[i] = (i * 59 + salt * 13 + 1) % 256;
  }
}

std::vector<float> Host(const ParamBlock& b) {
  std::vector<float> v;
  EXPECT_TRUE(b.CopyToHost(&v).ok());
  return v;
}

TEST(ParamLayoutTest, CanonicalOrderAndContiguousOffsets) {
  const auto infos = ParamInfos(Tiny());
  std::vector<std::string> names;
  for (const auto& i : infos) names.push_back(i.name);
  const std::vector<std::string> expect = {
      "wte", "wpe", "layer0.ln1_w", "layer0.ln1_b", "layer0.qkv_w", "layer0.qkv_b", "layer0.proj_w",
      "layer0.proj_b", "layer0.ln2_w", "layer0.ln2_b", "layer0.fc_w", "layer0.fc_b", "layer0.fcproj_w",
      "layer0.fcproj_b", "layer1.ln1_w", "layer1.ln1_b", "layer1.qkv_w", "layer1.qkv_b", "layer1.proj_w",
      "layer1.proj_b", "layer1.ln2_w", "layer1.ln2_b", "layer1.router_w", "layer1.expert_w_in",
      "layer1.expert_b_in", "layer1.expert_w_out", "layer1.expert_b_out", "lnf_w", "lnf_b"};
  EXPECT_EQ(names, expect);
  int64_t offset = 0;
  for (const auto& i : infos) {
    EXPECT_EQ(i.offset, offset) << i.name;
    offset += i.numel;
    const bool matrix = i.name.size() > 2 && i.name.compare(i.name.size() - 2, 2, "_w") == 0 &&
                        i.name.find("ln") == std::string::npos;
    const bool stacked = i.name.find("expert_w") != std::string::npos;
    EXPECT_EQ(i.decays, matrix || stacked || i.name == "wte" || i.name == "wpe") << i.name;
  }
  EXPECT_EQ(infos[23].shape, (Shape{4, 8, 16}));  // expert_w_in (E, C, F)
}

TEST(ModelInitTest, FollowsTheSpec) {
  ModelConfig cfg = Tiny();
  cfg.d_model = 64;
  cfg.d_ff = 128;
  auto be = CreateCpuBackend(BackendOptions{2});
  auto model = Model::Create(cfg, be.get(), 42).value();
  const auto p = Host(model->params());
  for (const auto& info : model->params().infos()) {
    const float* v = p.data() + info.offset;
    double sum2 = 0, maxabs = 0;
    for (int64_t i = 0; i < info.numel; ++i) {
      sum2 += static_cast<double>(v[i]) * v[i];
      maxabs = std::max(maxabs, static_cast<double>(std::fabs(v[i])));
    }
    const double rms = std::sqrt(sum2 / info.numel);
    if (info.name.find("ln") != std::string::npos && info.name.back() == 'w') {
      EXPECT_EQ(rms, 1.0) << info.name;
    } else if (!info.decays) {
      EXPECT_EQ(maxabs, 0.0) << info.name;
    } else {
      const double fan_in = info.shape.size() == 3 ? info.shape[1] : info.shape[0];
      const double std_dev =
          (info.name == "wte" || info.name == "wpe") ? 1.0 / std::sqrt(cfg.d_model) : std::sqrt(0.1 / fan_in);
      EXPECT_LE(maxabs, 2 * std_dev + 1e-7) << info.name;           // truncated at 2 std
      EXPECT_NEAR(rms, 0.88 * std_dev, 0.12 * std_dev) << info.name;  // truncation shrinks std to 0.88
    }
  }
  // An expert host can initialise one expert's slice alone, identically.
  const auto& infos = model->params().infos();
  for (size_t i = 0; i < infos.size(); ++i) {
    if (infos[i].name != "layer1.expert_w_out") continue;
    const int64_t per_expert = infos[i].numel / 4;
    std::vector<float> slice(per_expert);
    InitParamRange(infos[i], static_cast<uint32_t>(i), 42, 2 * per_expert, 3 * per_expert, slice.data());
    EXPECT_TRUE(std::equal(slice.begin(), slice.end(), p.begin() + infos[i].offset + 2 * per_expert));
  }
  auto again = Model::Create(cfg, be.get(), 42).value();
  EXPECT_EQ(Host(again->params()), p);
  auto other = Model::Create(cfg, be.get(), 43).value();
  EXPECT_NE(Host(other->params()), p);
}

TEST(ModelConfigTest, BadValuesAreRejectedWithTheirName) {
  auto be = CreateCpuBackend(BackendOptions{1});
  struct Case {
    void (*mutate)(ModelConfig*);
    const char* field;
  };
  const Case cases[] = {
      {[](ModelConfig* c) { c->heads = 3; }, "heads"},
      {[](ModelConfig* c) { c->layers = 0; }, "layers"},
      {[](ModelConfig* c) { c->d_model = -8; }, "d_model"},
      {[](ModelConfig* c) { c->d_ff = 0; }, "d_ff"},
      {[](ModelConfig* c) { c->experts = -1; }, "experts"},
      {[](ModelConfig* c) { c->context = 0; }, "context"},
      {[](ModelConfig* c) { c->capacity_factor = 0; }, "capacity_factor"},
      {[](ModelConfig* c) { c->eval_capacity_factor = NAN; }, "eval_capacity_factor"},
      {[](ModelConfig* c) { c->dropout = 1.0f; }, "dropout"},
      {[](ModelConfig* c) { c->expert_dropout = -0.1f; }, "expert_dropout"},
      {[](ModelConfig* c) { c->lb_alpha = -1; }, "lb_alpha"},
      {[](ModelConfig* c) { c->jitter_eps = 2; }, "jitter_eps"},
      {[](ModelConfig* c) { c->moe_every = -1; }, "moe_every"},
  };
  for (const Case& c : cases) {
    ModelConfig cfg = Tiny();
    c.mutate(&cfg);
    const absl::Status s = cfg.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << s.message();
    EXPECT_EQ(Model::Create(cfg, be.get(), 1).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(Tiny().Validate().ok());
}

TEST(ModelInputTest, BadBatchesChangeNothing) {
  auto be = CreateCpuBackend(BackendOptions{1});
  auto model = Model::Create(Tiny(), be.get(), 1).value();
  auto grads = model->NewGradBlock().value();
  ASSERT_TRUE(grads->CopyFromHost(std::vector<float>(grads->size(), 3.0f)).ok());
  const auto params_before = Host(model->params());
  std::vector<int32_t> x, y;
  MakeBatch(2, 8, 0, &x, &y);
  const StepContext ctx;
  auto bad_token = x;
  bad_token[3] = 256;
  auto negative = y;
  negative[0] = -1;
  EXPECT_EQ(model->ForwardBackward(bad_token, y, 2, 8, ctx, 1, grads.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model->ForwardBackward(x, negative, 2, 8, ctx, 1, grads.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model->ForwardBackward(x, y, 2, 7, ctx, 1, grads.get()).status().code(),
            absl::StatusCode::kInvalidArgument);  // size mismatch
  EXPECT_EQ(model->ForwardBackward(x, y, 1, 16, ctx, 1, grads.get()).status().code(),
            absl::StatusCode::kInvalidArgument);  // T > context
  EXPECT_EQ(model->ForwardBackward(x, y, 2, 8, ctx, 1, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model->ForwardBackward(x, y, 2, 8, ctx, NAN, grads.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model->Evaluate(bad_token, y, 2, 8).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Host(model->params()), params_before);
  EXPECT_EQ(Host(*grads), std::vector<float>(grads->size(), 3.0f));
}

// Directional finite differences of the total loss (ce + lb + z) for every parameter tensor.
// Router weights are scaled up so that routing margins are wide and the small
// perturbations never flip a token's expert (argmax and capacity are not differentiable).
void CheckModelGradients(const ModelConfig& cfg, int B, int T) {
  auto be = CreateCpuBackend(BackendOptions{2});
  auto model = Model::Create(cfg, be.get(), 7).value();
  for (const ParamInfo& info : model->params().infos()) {
    if (info.name.find("router_w") != std::string::npos) {
      be->Scale(model->params().data() + info.offset, 20.0f, info.numel);
    }
  }
  auto grads = model->NewGradBlock().value();
  auto scratch = model->NewGradBlock().value();
  std::vector<int32_t> x, y;
  MakeBatch(B, T, 1, &x, &y);
  const StepContext ctx{1, 0, 0, true};
  const auto stats = model->ForwardBackward(x, y, B, T, ctx, 1.0f, grads.get()).value();
  const auto p0 = Host(model->params());
  const auto g = Host(*grads);
  uint32_t tag = 100;
  for (const ParamInfo& info : model->params().infos()) {
    std::vector<float> pt(p0.begin() + info.offset, p0.begin() + info.offset + info.numel);
    std::vector<float> gt(g.begin() + info.offset, g.begin() + info.offset + info.numel);
    auto loss = [&](const std::vector<float>& v) {
      std::vector<float> p = p0;
      std::copy(v.begin(), v.end(), p.begin() + info.offset);
      EXPECT_TRUE(model->params().CopyFromHost(p).ok());
      const auto s = model->ForwardBackward(x, y, B, T, ctx, 1.0f, scratch.get()).value();
      EXPECT_EQ(s.expert_counts, stats.expert_counts) << "perturbation changed the routing";
      return s.loss;
    };
    SCOPED_TRACE(info.name);
    ExpectDirectionalGrad(loss, pt, gt, tag++, 3e-4, 2e-2, 5e-4);
  }
  ASSERT_TRUE(model->params().CopyFromHost(p0).ok());
}

TEST(ModelGradientTest, DenseModelMatchesFiniteDifferences) {
  ModelConfig cfg = Tiny();
  cfg.experts = 0;
  cfg.dropout = 0;
  CheckModelGradients(cfg, 2, 8);
}

TEST(ModelGradientTest, SwitchModelWithDropsMatchesFiniteDifferences) {
  ModelConfig cfg = Tiny();
  cfg.moe_every = 1;
  cfg.capacity_factor = 1.0f;  // capacity 4 of 16 tokens per expert: some drop
  cfg.lb_alpha = 0.05f;
  cfg.z_beta = 0.01f;
  cfg.jitter_eps = 0.05f;  // fixed noise for a fixed key: the gradient flows through it
  cfg.dropout = 0;
  cfg.expert_dropout = 0;
  CheckModelGradients(cfg, 2, 8);
}

// Runs one training micro-batch with all randomness on and returns (loss, grads).
// Shapes are large enough for OpenBLAS and the backend's pool to split work.
std::pair<double, std::vector<float>> OneStep(int threads, uint64_t seed) {
  ModelConfig cfg = Tiny();
  cfg.d_model = 64;
  cfg.heads = 4;
  cfg.d_ff = 256;
  cfg.context = 64;
  cfg.moe_every = 1;
  cfg.jitter_eps = 0.01f;
  auto be = CreateCpuBackend(BackendOptions{threads});
  auto model = Model::Create(cfg, be.get(), seed).value();
  auto grads = model->NewGradBlock().value();
  std::vector<int32_t> x, y;
  MakeBatch(4, 64, 2, &x, &y);
  const auto s = model->ForwardBackward(x, y, 4, 64, StepContext{seed, 3, 1, true}, 0.25f, grads.get()).value();
  return {s.loss, Host(*grads)};
}

TEST(ModelDeterminismTest, SameSeedSameBitsWhateverTheThreadCount) {
  const auto a = OneStep(1, 11);
  const auto b = OneStep(2, 11);
  const auto c = OneStep(2, 11);
  EXPECT_EQ(a.first, b.first);
  EXPECT_TRUE(a.second == b.second) << "1 vs 2 threads differ";
  EXPECT_TRUE(b.second == c.second) << "two runs differ";
  EXPECT_NE(OneStep(2, 12).first, a.first);
}

TEST(ModelTest, BatchShapesCanChangeBetweenCalls) {
  auto be = CreateCpuBackend(BackendOptions{2});
  auto model = Model::Create(Tiny(), be.get(), 4).value();
  std::vector<int32_t> x, y, bx, by;
  MakeBatch(1, 5, 6, &x, &y);  // T < context
  MakeBatch(3, 8, 7, &bx, &by);
  const double first = model->Evaluate(x, y, 1, 5).value().loss;
  ASSERT_TRUE(model->Evaluate(bx, by, 3, 8).ok());  // grows the activation arena
  EXPECT_EQ(model->Evaluate(x, y, 1, 5).value().loss, first);
  auto fresh = Model::Create(Tiny(), be.get(), 4).value();
  EXPECT_EQ(fresh->Evaluate(x, y, 1, 5).value().loss, first);
}

TEST(ModelTest, GradScaleScalesGradientsExactly) {
  auto be = CreateCpuBackend(BackendOptions{2});
  ModelConfig cfg = Tiny();
  cfg.dropout = 0;
  auto model = Model::Create(cfg, be.get(), 3).value();
  auto g1 = model->NewGradBlock().value();
  auto g2 = model->NewGradBlock().value();
  std::vector<int32_t> x, y;
  MakeBatch(2, 8, 3, &x, &y);
  ASSERT_TRUE(model->ForwardBackward(x, y, 2, 8, {}, 1.0f, g1.get()).ok());
  ASSERT_TRUE(model->ForwardBackward(x, y, 2, 8, {}, 0.25f, g2.get()).ok());
  auto a = Host(*g1), b = Host(*g2);
  for (float& v : a) v *= 0.25f;
  EXPECT_TRUE(a == b);
}

TEST(ModelTest, RoutingRecordsAndEvalCapacity) {
  auto be = CreateCpuBackend(BackendOptions{2});
  ModelConfig cfg = Tiny();
  cfg.moe_every = 1;
  cfg.capacity_factor = 0.5f;  // capacity 4 of 32 tokens per expert: heavy dropping in training
  cfg.dropout = 0;
  cfg.expert_dropout = 0;
  auto model = Model::Create(cfg, be.get(), 9).value();
  auto grads = model->NewGradBlock().value();
  std::vector<int32_t> x, y;
  MakeBatch(4, 8, 4, &x, &y);
  StepContext ctx;
  ctx.record_routing = true;
  ctx.record_logits = true;
  const auto train = model->ForwardBackward(x, y, 4, 8, ctx, 1.0f, grads.get()).value();
  ASSERT_EQ(train.routing.size(), 2u);
  ASSERT_EQ(train.expert_counts.size(), 2u);
  EXPECT_EQ(train.logits.size(), 32u * 256u);
  int64_t dropped = 0;
  for (size_t l = 0; l < 2; ++l) {
    const LayerRouting& r = train.routing[l];
    std::vector<int64_t> counts(4, 0), kept(4, 0);
    for (int n = 0; n < 32; ++n) {
      ++counts[r.expert[n]];
      if (r.dropped[n]) {
        ++dropped;
        EXPECT_EQ(kept[r.expert[n]], 4) << "a token was dropped before its expert was full";
      } else {
        ++kept[r.expert[n]];
      }
    }
    EXPECT_EQ(counts, train.expert_counts[l]);
  }
  EXPECT_EQ(dropped, train.dropped_tokens);
  EXPECT_GT(dropped, 0);
  const auto eval = model->Evaluate(x, y, 4, 8, true).value();
  // Layer 0 routes identically (no jitter or dropout); deeper layers see other inputs
  // because fewer tokens were dropped below them.
  EXPECT_EQ(eval.expert_counts[0], train.expert_counts[0]);
  EXPECT_LE(eval.dropped_tokens, train.dropped_tokens);  // eval capacity factor 2.0
  EXPECT_NEAR(eval.loss, eval.ce + eval.lb + eval.z, 1e-12);
}

TEST(ModelTest, TrainingOnOneBatchDrivesTheLossDown) {
  auto be = CreateCpuBackend(BackendOptions{2});
  ModelConfig cfg = Tiny();
  cfg.d_model = 32;
  cfg.heads = 4;
  cfg.d_ff = 64;
  cfg.moe_every = 1;
  cfg.context = 16;
  auto model = Model::Create(cfg, be.get(), 1).value();
  auto grads = model->NewGradBlock().value();
  auto opt = AdamW::Create(model->params(), AdamWConfig{}).value();
  std::vector<int32_t> x(64), y(64);
  const char* text = "the quick brown fox jumps over the lazy dog. the quick brown fox jumps over";
  for (int i = 0; i < 64; ++i) {
    x[i] = static_cast<unsigned char>(text[i]);
    y[i] = static_cast<unsigned char>(text[i + 1]);
  }
  double first = 0, last = 0;
  for (int step = 1; step <= 40; ++step) {
    const auto s = model->ForwardBackward(x, y, 4, 16, StepContext{1, step, 0, true}, 1.0f, grads.get()).value();
    if (step == 1) first = s.ce;
    last = s.ce;
    ASSERT_TRUE(opt->Step(&model->params(), grads.get(), 3e-3f).ok());
  }
  // Tied head, wte std 1/sqrt(d_model): logits of unit variance, so the first loss is
  // about log(256) + 1/2 (the mean of log-sum-exp of unit-variance logits).
  EXPECT_NEAR(first, std::log(256.0) + 0.5, 0.5);
  EXPECT_LT(last, first - 2.0) << "first " << first << " last " << last;
}

}  // namespace
}  // namespace sy::gpu
