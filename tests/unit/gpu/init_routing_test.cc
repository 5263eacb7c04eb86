// Routing at initialisation: with the default model, before any update, the routers
// of the Switch layers must spread real text over the experts. A residual stream
// dominated by a component common to all tokens (embeddings drawn too small next to
// the attention and FFN outputs) makes every router input nearly the same vector,
// and top-1 sends most tokens to one expert, which then drops them over capacity.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/model/model.h"
#include "gtest/gtest.h"

namespace sy::gpu {
namespace {

constexpr char kText[] =
    "It was the middle of the afternoon when the carrier stopped at the inn by the river, and the "
    "driver, who had said nothing for three hours, climbed down, looked at the sky and declared that "
    "he would go no further that day. The passengers complained, of course; one of them, a tall man "
    "with a grey coat and a parcel of letters under his arm, asked whether there was another road. "
    "\"There is the old bridge,\" said the landlord, \"but nobody has crossed it since the winter, and "
    "the water is high.\" So they stayed. Supper was bread, cheese and a thin soup; the talk was of "
    "prices, of the weather, of a wedding in the next village, and of the letters, which the tall man "
    "would not show to anyone. At nine the candles were put out and the house was quiet.\n";

// Over-capacity fraction at capacity factor 1.25 of each Switch layer, averaged over
// layers, for the default model (Switch FFN every other layer) initialised from seed.
double OverCapacityAtInit(uint64_t seed) {
  ModelConfig cfg;
  cfg.moe_every = 2;
  cfg.dropout = 0;
  cfg.expert_dropout = 0;
  auto backend = CreateCpuBackend(BackendOptions{1});
  auto model = Model::Create(cfg, backend.get(), seed);
  EXPECT_TRUE(model.ok()) << model.status();
  const std::string text(kText);
  const int B = 16, T = cfg.context;
  std::vector<int32_t> inputs(B * T), targets(B * T);
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      const size_t at = (static_cast<size_t>(b) * 37 + t) % (text.size() - 1);
      inputs[b * T + t] = static_cast<unsigned char>(text[at]);
      targets[b * T + t] = static_cast<unsigned char>(text[at + 1]);
    }
  }
  auto stats = (*model)->Evaluate(inputs, targets, B, T);
  EXPECT_TRUE(stats.ok()) << stats.status();
  const int capacity = cfg.Capacity(B * T, 1.25f);
  double over = 0;
  for (const std::vector<int64_t>& counts : stats->expert_counts) {
    int64_t dropped = 0;
    for (int64_t c : counts) dropped += std::max<int64_t>(0, c - capacity);
    over += static_cast<double>(dropped) / (B * T);
  }
  EXPECT_EQ(stats->expert_counts.size(), 2u);
  return over / static_cast<double>(stats->expert_counts.size());
}

TEST(InitRoutingTest, DefaultModelSpreadsTokensOverExpertsBeforeTraining) {
  double sum = 0;
  constexpr int kSeeds = 4;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    const double over = OverCapacityAtInit(seed);
    SCOPED_TRACE(seed);
    EXPECT_LT(over, 0.35) << "seed " << seed << ": routing collapsed at init";
    sum += over;
  }
  EXPECT_LT(sum / kSeeds, 0.2) << "mean over-capacity fraction at init";
}

}  // namespace
}  // namespace sy::gpu
