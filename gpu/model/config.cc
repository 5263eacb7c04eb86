// ModelConfig validation: every bad value gets a message naming the field.
#include "gpu/model/config.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace sy::gpu {
namespace {
absl::Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("model config: ", what));
}
bool InUnit(float x) { return std::isfinite(x) && x >= 0.0f && x < 1.0f; }
}  // namespace

absl::Status ModelConfig::Validate() const {
  if (vocab <= 0 || vocab > 65536) return Bad(absl::StrCat("vocab must be in [1, 65536], got ", vocab));
  if (layers <= 0 || layers > 256) return Bad(absl::StrCat("layers must be in [1, 256], got ", layers));
  if (d_model <= 0 || d_model > 65536) return Bad(absl::StrCat("d_model must be in [1, 65536], got ", d_model));
  if (heads <= 0) return Bad(absl::StrCat("heads must be positive, got ", heads));
  if (d_model % heads != 0) {
    return Bad(absl::StrCat("heads (", heads, ") must divide d_model (", d_model, ")"));
  }
  if (d_ff <= 0 || d_ff > 1 << 20) return Bad(absl::StrCat("d_ff must be in [1, 2^20], got ", d_ff));
  if (experts < 0 || experts > 4096) return Bad(absl::StrCat("experts must be in [0, 4096], got ", experts));
  if (moe_every < 0) return Bad(absl::StrCat("moe_every must be >= 0, got ", moe_every));
  if (context <= 0 || context > 1 << 16) return Bad(absl::StrCat("context must be in [1, 65536], got ", context));
  if (!(std::isfinite(capacity_factor) && capacity_factor > 0.0f)) {
    return Bad(absl::StrCat("capacity_factor must be positive, got ", capacity_factor));
  }
  if (!(std::isfinite(eval_capacity_factor) && eval_capacity_factor > 0.0f)) {
    return Bad(absl::StrCat("eval_capacity_factor must be positive, got ", eval_capacity_factor));
  }
  if (!(std::isfinite(lb_alpha) && lb_alpha >= 0.0f)) return Bad(absl::StrCat("lb_alpha must be >= 0, got ", lb_alpha));
  if (!(std::isfinite(z_beta) && z_beta >= 0.0f)) return Bad(absl::StrCat("z_beta must be >= 0, got ", z_beta));
  if (!InUnit(jitter_eps)) return Bad(absl::StrCat("jitter_eps must be in [0, 1), got ", jitter_eps));
  if (!InUnit(dropout)) return Bad(absl::StrCat("dropout must be in [0, 1), got ", dropout));
  if (!InUnit(expert_dropout)) return Bad(absl::StrCat("expert_dropout must be in [0, 1), got ", expert_dropout));
  if (!(std::isfinite(skew) && skew >= 0.0f && skew <= 1000.0f)) {
    return Bad(absl::StrCat("skew must be in [0, 1000], got ", skew));
  }
  return absl::OkStatus();
}

int ModelConfig::Capacity(int tokens, float factor) const {
  if (experts <= 0) return tokens;
  return static_cast<int>(std::ceil(static_cast<double>(factor) * tokens / experts));
}

std::string ModelConfig::DebugString() const {
  return absl::StrCat("vocab=", vocab, " layers=", layers, " d_model=", d_model, " heads=", heads,
                      " d_ff=", d_ff, " experts=", experts, " moe_every=", moe_every, " context=", context,
                      " capacity_factor=", capacity_factor, " eval_capacity_factor=", eval_capacity_factor,
                      " lb_alpha=", lb_alpha, " z_beta=", z_beta, " jitter_eps=", jitter_eps,
                      " dropout=", dropout, " expert_dropout=", expert_dropout, " skew=", skew);
}

}  // namespace sy::gpu
