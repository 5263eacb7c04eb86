// The checks of TrainerOptions (see options.h): ranges of every field, then the combinations.
#include "services/cluster/options.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/flags/flags.h"

namespace sy::cluster {
namespace {

using flags::RequireInRange;
using flags::RequireNonNegative;
using flags::RequirePositive;

absl::Status CheckDevice(const std::string& device) {
  if (device == "cpu" || device == "cuda" || absl::StartsWith(device, "cuda:")) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--device=", device, ": expected cpu or cuda:N"));
}

absl::Status CheckRanges(const TrainerOptions& o) {
  return flags::FirstFailure({
      RequireNonNegative("steps", o.steps),
      CheckDevice(o.device),
      RequireNonNegative("threads", int64_t{o.threads}),
      flags::RequireOneOf("log_level", o.log_level, {"debug", "info", "warning", "error"}),
      RequirePositive("layers", int64_t{o.layers}),
      RequirePositive("d_model", int64_t{o.d_model}),
      RequirePositive("heads", int64_t{o.heads}),
      RequirePositive("d_ff", int64_t{o.d_ff}),
      RequireNonNegative("experts", int64_t{o.experts}),
      RequireNonNegative("moe_every", int64_t{o.moe_every}),
      RequirePositive("context", int64_t{o.context}),
      RequirePositive("micro_batch", int64_t{o.micro_batch}),
      RequirePositive("micro_batches", int64_t{o.micro_batches}),
      RequireInRange("capacity_factor", o.capacity_factor, 1e-3, 1e3),
      RequireInRange("eval_capacity_factor", o.eval_capacity_factor, 1e-3, 1e3),
      RequireInRange("lr", o.lr, 0.0, 10.0),
      RequireNonNegative("warmup", o.warmup),
      RequireInRange("weight_decay", o.weight_decay, 0.0, 10.0),
      RequireInRange("clip", o.clip, 0.0, 1e9),
      RequireInRange("dropout", o.dropout, 0.0, 0.99),
      RequireInRange("expert_dropout", o.expert_dropout, 0.0, 0.99),
      RequireInRange("jitter", o.jitter, 0.0, 0.99),
      RequireInRange("lb_alpha", o.lb_alpha, 0.0, 100.0),
      RequireInRange("z_beta", o.z_beta, 0.0, 100.0),
      RequireInRange("skew", o.skew, 0.0, 1000.0),
      flags::RequireOneOf("wire_dtype", o.wire_dtype, {"f32", "bf16"}),
      flags::RequireOneOf("dense_wire_dtype", o.dense_wire_dtype, {"f32", "bf16"}),
      RequireNonNegative("eval_every", o.eval_every),
      RequirePositive("eval_batches", int64_t{o.eval_batches}),
  });
}

}  // namespace

absl::Status CheckTrainerOptions(const TrainerOptions& o, bool require_run_flags) {
  if (require_run_flags && o.data.empty()) return absl::InvalidArgumentError("--data is required");
  if (require_run_flags && o.steps == 0) return absl::InvalidArgumentError("--steps is required (> 0)");
  if (absl::Status s = CheckRanges(o); !s.ok()) return s;
  if (o.d_model % o.heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--d_model=", o.d_model, " is not divisible by --heads=", o.heads));
  }
  if (o.experts == 1) return absl::InvalidArgumentError("--experts=1: use 0 for a dense model or at least 2");
  return absl::OkStatus();
}

}  // namespace sy::cluster
