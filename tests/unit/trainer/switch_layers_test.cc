// The model layer <-> Switch-layer conversion (services/cluster/switch_layers.h):
// both directions, their round trip, and the layers that have no counterpart.
#include "services/cluster/switch_layers.h"

#include <optional>

#include <gtest/gtest.h>

namespace sy::cluster {
namespace {

gpu::ModelConfig Layers(int layers, int moe_every, int experts = 4) {
  gpu::ModelConfig config;
  config.layers = layers;
  config.moe_every = moe_every;
  config.experts = experts;
  return config;
}

TEST(SwitchLayersTest, EveryOtherLayer) {
  const gpu::ModelConfig config = Layers(4, 2);  // model layers 1 and 3 are Switch layers 0 and 1
  EXPECT_EQ(SwitchLayerCount(config), 2);
  EXPECT_EQ(SwitchLayerOf(1, config), std::optional<int>(0));
  EXPECT_EQ(SwitchLayerOf(3, config), std::optional<int>(1));
  EXPECT_EQ(ModelLayerOf(0, config), std::optional<int>(1));
  EXPECT_EQ(ModelLayerOf(1, config), std::optional<int>(3));
  for (int dense_or_outside : {-1, 0, 2, 4}) {
    EXPECT_FALSE(SwitchLayerOf(dense_or_outside, config).has_value()) << dense_or_outside;
  }
  for (int outside : {-1, 2}) EXPECT_FALSE(ModelLayerOf(outside, config).has_value()) << outside;
}

TEST(SwitchLayersTest, RoundTripsForEverySpacing) {
  for (int moe_every : {1, 2, 3}) {
    const gpu::ModelConfig config = Layers(7, moe_every);
    for (int s = 0; s < SwitchLayerCount(config); ++s) {
      const std::optional<int> layer = ModelLayerOf(s, config);
      ASSERT_TRUE(layer.has_value()) << moe_every << "/" << s;
      EXPECT_TRUE(config.IsSwitchLayer(*layer));
      EXPECT_EQ(SwitchLayerOf(*layer, config), std::optional<int>(s));
    }
  }
  EXPECT_EQ(SwitchLayerCount(Layers(7, 1)), 7);
  EXPECT_EQ(SwitchLayerCount(Layers(7, 3)), 2);
}

TEST(SwitchLayersTest, DenseModelHasNone) {
  const gpu::ModelConfig dense = Layers(3, 1, /*experts=*/0);
  EXPECT_EQ(SwitchLayerCount(dense), 0);
  EXPECT_FALSE(SwitchLayerOf(0, dense).has_value());
  EXPECT_FALSE(ModelLayerOf(0, dense).has_value());
}

}  // namespace
}  // namespace sy::cluster
