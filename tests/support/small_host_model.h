// The smallest model the expert host's unit and fuzz tests serve: two Switch layers of
// four experts, d_model 8, context 4, no dropout. One definition, so the unit fixture and
// the fuzz fixture test the same host.
#pragma once

#include <cstdint>

#include "gpu/model/config.h"

namespace sy::testing {

inline constexpr uint32_t kSmallHostDModel = 8;

inline gpu::ModelConfig SmallHostModel() {
  gpu::ModelConfig c;
  c.layers = 2;
  c.d_model = kSmallHostDModel;
  c.heads = 2;
  c.d_ff = 16;
  c.experts = 4;
  c.moe_every = 1;
  c.context = 4;
  c.dropout = 0;
  c.expert_dropout = 0;
  return c;
}

}  // namespace sy::testing
