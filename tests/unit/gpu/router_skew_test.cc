// The router init skew (ModelConfig::skew, --skew): 0 leaves every parameter as
// before; X > 0 scales only the favoured experts' router columns, identically in a
// whole-model init and in a slice init (an expert host's dense shard), and routes
// most tokens to those experts.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/model/model.h"
#include "gtest/gtest.h"

namespace sy::gpu {
namespace {

ModelConfig Small() {
  ModelConfig cfg;
  cfg.layers = 2;
  cfg.d_model = 32;
  cfg.heads = 2;
  cfg.d_ff = 32;
  cfg.experts = 8;
  cfg.moe_every = 2;  // layer 1 is a Switch layer
  cfg.context = 16;
  cfg.dropout = 0;
  cfg.expert_dropout = 0;
  return cfg;
}

std::vector<float> Host(const ParamBlock& p) {
  std::vector<float> out;
  EXPECT_TRUE(p.CopyToHost(&out).ok());
  return out;
}

const ParamInfo& Router(const ParamBlock& p) {
  for (const ParamInfo& info : p.infos()) {
    if (info.name == "layer1.router_w") return info;
  }
  ADD_FAILURE() << "no router";
  return p.infos().front();
}

TEST(RouterSkewTest, ZeroSkewIsTheUnskewedInit) {
  auto be = CreateCpuBackend(BackendOptions{1});
  ModelConfig skewed = Small();
  skewed.skew = 0.0f;
  for (const ParamInfo& info : ParamInfos(skewed)) {
    EXPECT_EQ(info.init_skew, 0.0f) << info.name;
    EXPECT_EQ(info.skewed_columns, 0) << info.name;
  }
  auto a = Model::Create(Small(), be.get(), 7).value();
  auto b = Model::Create(skewed, be.get(), 7).value();
  EXPECT_EQ(Host(a->params()), Host(b->params()));
}

TEST(RouterSkewTest, OnlyTheFavouredRouterColumnsAreScaled) {
  auto be = CreateCpuBackend(BackendOptions{1});
  ModelConfig cfg = Small();
  cfg.skew = 3.0f;
  ASSERT_EQ(cfg.SkewedExperts(), 1);
  auto plain = Model::Create(Small(), be.get(), 7).value();
  auto skewed = Model::Create(cfg, be.get(), 7).value();
  const std::vector<float> p = Host(plain->params()), s = Host(skewed->params());
  const ParamInfo& router = Router(skewed->params());
  const int64_t E = router.shape[1];
  for (int64_t i = 0; i < static_cast<int64_t>(p.size()); ++i) {
    const bool in_router = i >= router.offset && i < router.offset + router.numel;
    const bool favoured = in_router && (i - router.offset) % E == 0;
    ASSERT_EQ(s[i], favoured ? p[i] * 4.0f : p[i]) << "element " << i;
  }
  // A slice initialised alone (what an expert host does for its dense shard) agrees.
  const auto& infos = skewed->params().infos();
  for (uint32_t i = 0; i < infos.size(); ++i) {
    if (infos[i].name != router.name) continue;
    std::vector<float> slice(static_cast<size_t>(router.numel - 5));
    InitParamRange(infos[i], i, 7, 5, router.numel, slice.data());
    EXPECT_TRUE(std::equal(slice.begin(), slice.end(), s.begin() + router.offset + 5));
  }
}

TEST(RouterSkewTest, FavouredExpertGetsMostTokens) {
  auto be = CreateCpuBackend(BackendOptions{1});
  const int B = 8, T = 16;
  std::vector<int32_t> x(B * T), y(B * T);
  for (int i = 0; i < B * T; ++i) {
    x[i] = (i * 131 + 7) % 256;
    y[i] = (i * 37 + 3) % 256;
  }
  auto share_of_expert0 = [&](float skew) {
    ModelConfig cfg = Small();
    cfg.skew = skew;
    auto model = Model::Create(cfg, be.get(), 11).value();
    auto stats = model->Evaluate(x, y, B, T).value();
    const std::vector<int64_t>& counts = stats.expert_counts.at(0);
    const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
    return static_cast<double>(counts[0]) / static_cast<double>(total);
  };
  const double even = share_of_expert0(0.0f);
  const double hot = share_of_expert0(8.0f);
  EXPECT_LT(even, 0.3);
  EXPECT_GT(hot, 0.4);  // one expert of 8 takes a large share (at most about half: its logit must be positive)
  EXPECT_GT(hot, 2 * even);
}

TEST(RouterSkewTest, BadSkewIsRejected) {
  auto be = CreateCpuBackend(BackendOptions{1});
  ModelConfig cfg = Small();
  cfg.skew = -1.0f;
  auto model = Model::Create(cfg, be.get(), 1);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("skew"), std::string::npos);
}

}  // namespace
}  // namespace sy::gpu
