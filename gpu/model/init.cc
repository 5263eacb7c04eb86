// Parameter initialisation of the spec (Switch paper, s = 0.1; embeddings see below), counter-based so it
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

void InitParamRange(const ParamInfo& info, uint32_t param_index, uint64_t seed, int64_t begin, int64_t end,
                    float* out) {
  const bool is_ln_weight = EndsWith(info.name, "ln1_w") || EndsWith(info.name, "ln2_w") || info.name == "lnf_w";
  if (is_ln_weight || !info.decays) {  // LN weights start at 1; biases and LN biases at 0
    for (int64_t i = begin; i < end; ++i) out[i - begin] = is_ln_weight ? 1.0f : 0.0f;
    return;
  }
  // wte and wpe: std 1/sqrt(d_model) (d_model = their dim 1). The LM head is tied to
  // wte, so this gives logits of unit variance at init. A smaller draw (GPT-2's 0.02)
  // leaves the embeddings below the attention and FFN outputs, whose large part is
  // the same for every token; every router input is then nearly the same vector and
  // top-1 sends most tokens to one expert before any update.
  double std_dev = 1.0 / std::sqrt(static_cast<double>(info.shape.back()));
  if (info.name != "wte" && info.name != "wpe") {
    // fan_in = first dim of the (in, out) matrix; for stacked experts (E, in, out) it is dim 1.
    const int64_t fan_in = info.shape.size() == 3 ? info.shape[1] : info.shape[0];
    std_dev = std::sqrt(0.1 / static_cast<double>(fan_in));
  }
  const CounterRng rng(seed, RngStream::kInit, param_index);
  for (int64_t i = begin; i < end; ++i) {
    out[i - begin] = static_cast<float>(std_dev * TruncatedNormal(rng, static_cast<uint64_t>(i)));
  }
  // Router skew. The router has no bias and its input is layer-normalised (zero mean
  // over channels at init), so a constant logit offset cannot come from the weights;
  // scaling the favoured experts' columns widens their logits instead, and the widest
  // logit wins top-1 most often. Applied after the draw: skew 0 changes nothing.
  if (info.init_skew > 0.0f && info.shape.size() == 2) {
    const int64_t columns = info.shape[1];
    const float scale = 1.0f + info.init_skew;
    for (int64_t i = begin; i < end; ++i) {
      if (i % columns < info.skewed_columns) out[i - begin] *= scale;
    }
  }
}

absl::Status InitParams(const ModelConfig& config, uint64_t seed, ParamBlock* params) {
  if (params->size() != ParamCount(ParamInfos(config))) {
    return absl::InvalidArgumentError("InitParams: block layout does not match the config");
  }
  std::vector<float> host(params->size(), 0.0f);
  const auto& infos = params->infos();
  for (size_t p = 0; p < infos.size(); ++p) {
    InitParamRange(infos[p], static_cast<uint32_t>(p), seed, 0, infos[p].numel, host.data() + infos[p].offset);
  }
  return params->CopyFromHost(host);
}

}  // namespace sy::gpu
