// Picking the next byte from the model's logits: greedy at temperature 0, otherwise a
// draw from softmax(logits / temperature) by inverse CDF, the uniform number coming
// from the counter-based RNG (common/base/philox.h) at index `draw`, so the same seed
// gives the same text on every machine and run. Pure functions; thread-safe.
#pragma once

#include <cstdint>

#include "absl/types/span.h"
#include "common/base/philox.h"

namespace sy::generate {

// The RNG of a generation seeded by `seed` (stream kSampling).
CounterRng SamplingRng(uint64_t seed);

// The index of the chosen logit (`logits` non-empty, finite; temperature >= 0). At
// temperature 0 the largest logit, the lowest index among equals.
int32_t SampleToken(absl::Span<const float> logits, double temperature, const CounterRng& rng, uint64_t draw);

}  // namespace sy::generate
