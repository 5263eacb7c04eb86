// Parameter initialisation of the spec (Switch paper, s = 0.1), counter-based so it
// is the same on every machine: element i of parameter p draws from
// CounterRng(seed, kInit, p).
#include <cmath>
#include <vector>

#include "common/base/philox.h"
#include "gpu/model/model.h"

namespace sy::gpu {
namespace {

// Standard normal truncated to [-2, 2] for element i: Box-Muller on a pair of
// uniforms, redrawn (with the next pair index) until inside; deterministic in i.
float TruncatedNormal(const CounterRng& rng, uint64_t i) {
  constexpr double kTwoPi = 6.283185307179586;
  for (uint64_t attempt = 0;; ++attempt) {
    const uint64_t base = (i * 64 + attempt) * 2;  // distinct pair per (element, attempt)
    const double u1 = (static_cast<double>(rng.Bits(base) >> 8) + 0.5) / 16777216.0;
    const double u2 = static_cast<double>(rng.Bits(base + 1) >> 8) / 16777216.0;
    const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
    if (std::fabs(z) <= 2.0 || attempt == 63) return static_cast<float>(std::fabs(z) <= 2.0 ? z : 0.0);
  }
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

absl::Status InitParams(const ModelConfig& config, uint64_t seed, ParamBlock* params) {
  if (params->size() != ParamCount(ParamInfos(config))) {
    return absl::InvalidArgumentError("InitParams: block layout does not match the config");
  }
  std::vector<float> host(params->size(), 0.0f);
  const auto& infos = params->infos();
  for (size_t p = 0; p < infos.size(); ++p) {
    const ParamInfo& info = infos[p];
    float* out = host.data() + info.offset;
    const bool is_ln_weight = EndsWith(info.name, "ln1_w") || EndsWith(info.name, "ln2_w") || info.name == "lnf_w";
    if (is_ln_weight) {
      for (int64_t i = 0; i < info.numel; ++i) out[i] = 1.0f;
      continue;
    }
    if (!info.decays) continue;  // biases and LN biases start at 0
    double std_dev;
    if (info.name == "wte" || info.name == "wpe") {
      std_dev = 0.02;
    } else {
      // fan_in = first dim of the (in, out) matrix; for stacked experts (E, in, out) it is dim 1.
      const int64_t fan_in = info.shape.size() == 3 ? info.shape[1] : info.shape[0];
      std_dev = std::sqrt(0.1 / static_cast<double>(fan_in));
    }
    const CounterRng rng(seed, RngStream::kInit, static_cast<uint32_t>(p));
    for (int64_t i = 0; i < info.numel; ++i) {
      out[i] = static_cast<float>(std_dev * TruncatedNormal(rng, static_cast<uint64_t>(i)));
    }
  }
  return params->CopyFromHost(host);
}

}  // namespace sy::gpu
