// Greedy and temperature sampling (see sampling.h).
#include "services/generate/sampling.h"

#include <cmath>
#include <vector>

namespace sy::generate {

CounterRng SamplingRng(uint64_t seed) { return CounterRng(seed, RngStream::kSampling); }

int32_t SampleToken(absl::Span<const float> logits, double temperature, const CounterRng& rng, uint64_t draw) {
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  if (temperature <= 0) return static_cast<int32_t>(best);
  // Shifted by the maximum so the largest weight is exp(0) = 1: no overflow at any temperature.
  std::vector<double> cumulative(logits.size());
  double total = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    total += std::exp((static_cast<double>(logits[i]) - logits[best]) / temperature);
    cumulative[i] = total;
  }
  const double target = static_cast<double>(rng.Uniform(draw)) * total;
  for (size_t i = 0; i < cumulative.size(); ++i) {
    if (target < cumulative[i]) return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(best);  // only when rounding left target at total
}

}  // namespace sy::generate
