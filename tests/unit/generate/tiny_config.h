// The tiny model the generate unit tests share: two Switch layers of four experts, fast on the CPU.
#pragma once

#include "gpu/model/config.h"

namespace sy::generate::testing {

inline gpu::ModelConfig TinyConfig() {
  gpu::ModelConfig c;
  c.layers = 2;
  c.d_model = 16;
  c.heads = 2;
  c.d_ff = 32;
  c.experts = 4;
  c.moe_every = 1;
  c.context = 8;
  return c;
}

}  // namespace sy::generate::testing
