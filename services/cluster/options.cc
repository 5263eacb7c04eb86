// Table-driven parsing of sy-trainer's flags (see options.h).
#include "services/cluster/options.h"

#include <cmath>
#include <functional>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace sy::cluster {
namespace {

using Setter = std::function<absl::Status(TrainerOptions&, const std::string&)>;

struct FlagSpec {
  const char* name;
  bool is_switch;  // takes no value ("--standalone")
  const char* help;
  Setter set;
  std::function<std::string(const TrainerOptions&)> show;  // current value for --help
};

absl::Status BadValue(const std::string& name, const std::string& value, const std::string& want) {
  return absl::InvalidArgumentError(absl::StrCat("--", name, "=", value, ": expected ", want));
}

template <typename Int>
FlagSpec IntFlag(const char* name, Int TrainerOptions::*field, int64_t min, const char* help) {
  return {name, false, help,
          [=](TrainerOptions& o, const std::string& v) {
            int64_t x;
            if (!absl::SimpleAtoi(v, &x) || x < min || x > std::numeric_limits<int32_t>::max()) {
              return BadValue(name, v, absl::StrCat("an integer >= ", min));
            }
            o.*field = static_cast<Int>(x);
            return absl::OkStatus();
          },
          [=](const TrainerOptions& o) { return absl::StrCat(o.*field); }};
}

FlagSpec RealFlag(const char* name, double TrainerOptions::*field, double min, double max, const char* help) {
  return {name, false, help,
          [=](TrainerOptions& o, const std::string& v) {
            double x;
            if (!absl::SimpleAtod(v, &x) || !std::isfinite(x) || x < min || x > max) {
              return BadValue(name, v, absl::StrFormat("a number in [%g, %g]", min, max));
            }
            o.*field = x;
            return absl::OkStatus();
          },
          [=](const TrainerOptions& o) { return absl::StrFormat("%g", o.*field); }};
}

FlagSpec TextFlag(const char* name, std::string TrainerOptions::*field, std::vector<std::string> allowed,
                  const char* help) {
  return {name, false, help,
          [=](TrainerOptions& o, const std::string& v) {
            bool ok = allowed.empty() ? !v.empty() : false;
            for (const std::string& a : allowed) ok = ok || v == a;
            if (!ok) {
              return BadValue(name, v, allowed.empty() ? "a non-empty value" : absl::StrJoin(allowed, " or "));
            }
            o.*field = v;
            return absl::OkStatus();
          },
          [=](const TrainerOptions& o) { return o.*field; }};
}

FlagSpec SwitchFlag(const char* name, bool TrainerOptions::*field, const char* help) {
  return {name, true, help,
          [=](TrainerOptions& o, const std::string& v) {
            if (v == "true" || v == "1" || v.empty()) {
              o.*field = true;
            } else if (v == "false" || v == "0") {
              o.*field = false;
            } else {
              return BadValue(name, v, "true or false");
            }
            return absl::OkStatus();
          },
          [=](const TrainerOptions& o) { return o.*field ? std::string("true") : std::string("false"); }};
}

const std::vector<FlagSpec>& Flags() {
  using O = TrainerOptions;
  static const std::vector<FlagSpec>* flags = new std::vector<FlagSpec>{
      SwitchFlag("help", &O::help, "print this text and exit"),
      SwitchFlag("standalone", &O::standalone, "train in one process with every expert in-process"),
      TextFlag("data", &O::data, {}, "corpus file (raw bytes; the last 10% is the validation split)"),
      IntFlag("steps", &O::steps, 1, "global training steps"),
      {"workdir", false, "directory for metrics.jsonl and summary.json (empty: write none)",
       [](O& o, const std::string& v) {
         o.workdir = v;
         return absl::OkStatus();
       },
       [](const O& o) { return o.workdir; }},
      {"device", false, "compute device: cpu or cuda:N",
       [](O& o, const std::string& v) {
         if (v != "cpu" && v != "cuda" && !absl::StartsWith(v, "cuda:")) return BadValue("device", v, "cpu or cuda:N");
         o.device = v;
         return absl::OkStatus();
       },
       [](const O& o) { return o.device; }},
      IntFlag("threads", &O::threads, 0, "compute threads, OpenBLAS included (0: all cores)"),
      TextFlag("log_level", &O::log_level, {"debug", "info", "warning", "error"}, "log level"),
      IntFlag("layers", &O::layers, 1, "transformer blocks"),
      IntFlag("d_model", &O::d_model, 1, "model width C"),
      IntFlag("heads", &O::heads, 1, "attention heads (must divide d_model)"),
      IntFlag("d_ff", &O::d_ff, 1, "FFN / expert hidden width F"),
      IntFlag("experts", &O::experts, 0, "experts per Switch layer (0: dense model)"),
      IntFlag("moe_every", &O::moe_every, 0, "layer l is a Switch layer when l % moe_every == moe_every-1 (0: dense)"),
      IntFlag("context", &O::context, 1, "sequence length T"),
      IntFlag("micro_batch", &O::micro_batch, 1, "sequences per micro-batch B"),
      IntFlag("micro_batches", &O::micro_batches, 1, "micro-batches per global step M"),
      RealFlag("capacity_factor", &O::capacity_factor, 1e-3, 1e3, "expert capacity factor in training"),
      RealFlag("eval_capacity_factor", &O::eval_capacity_factor, 1e-3, 1e3, "expert capacity factor in validation"),
      RealFlag("lr", &O::lr, 0, 10, "peak learning rate (cosine decay to 0.1*lr at the last step)"),
      IntFlag("warmup", &O::warmup, 0, "linear warmup steps"),
      RealFlag("weight_decay", &O::weight_decay, 0, 10, "AdamW decoupled weight decay (matrices only)"),
      RealFlag("clip", &O::clip, 0, 1e9, "global gradient-norm clip (0: off)"),
      RealFlag("dropout", &O::dropout, 0, 0.99, "dropout rate on residual branches"),
      RealFlag("expert_dropout", &O::expert_dropout, 0, 0.99, "dropout rate inside experts"),
      RealFlag("jitter", &O::jitter, 0, 0.99, "router input jitter epsilon (0: off)"),
      RealFlag("skew", &O::skew, 0, 1000,
               "router init skew: the first max(1, experts/8) experts' router columns start scaled by 1+X, "
               "so they get most tokens (hot-expert tests; 0: off)"),
      {"seed", false, "seed of data order, init, dropout and jitter",
       [](O& o, const std::string& v) {
         uint64_t x;
         if (!absl::SimpleAtoi(v, &x)) return BadValue("seed", v, "a non-negative integer");
         o.seed = x;
         return absl::OkStatus();
       },
       [](const O& o) { return absl::StrCat(o.seed); }},
      TextFlag("wire_dtype", &O::wire_dtype, {"f32", "bf16"}, "expert activations on the wire; standalone rounds at the same points"),
      IntFlag("eval_every", &O::eval_every, 0, "validation every K steps, and at the end (0: end only)"),
      IntFlag("eval_batches", &O::eval_batches, 1, "validation micro-batches per evaluation"),
  };
  return *flags;
}

absl::Status CheckConsistency(const TrainerOptions& o, bool require_run_flags) {
  if (require_run_flags && o.data.empty()) return absl::InvalidArgumentError("--data is required");
  if (require_run_flags && o.steps <= 0) return absl::InvalidArgumentError("--steps is required (> 0)");
  if (o.d_model % o.heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--d_model=", o.d_model, " is not divisible by --heads=", o.heads));
  }
  if (o.experts == 1) return absl::InvalidArgumentError("--experts=1: use 0 for a dense model or at least 2");
  return absl::OkStatus();
}

absl::StatusOr<TrainerOptions> ParseFlags(const std::vector<std::string>& args, bool require_run_flags) {
  TrainerOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "' (flags are --name=value)"));
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& f : Flags()) spec = name == f.name ? &f : spec;
    if (spec == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (!spec->is_switch) {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      value = args[++i];
    }
    if (absl::Status s = spec->set(o, value); !s.ok()) return s;
  }
  if (o.help) return o;
  if (absl::Status s = CheckConsistency(o, require_run_flags); !s.ok()) return s;
  return o;
}

}  // namespace

absl::StatusOr<TrainerOptions> ParseTrainerOptions(const std::vector<std::string>& args) {
  return ParseFlags(args, /*require_run_flags=*/true);
}

absl::StatusOr<TrainerOptions> ParseModelOptions(const std::vector<std::string>& args) {
  return ParseFlags(args, /*require_run_flags=*/false);
}

std::string HelpText() {
  std::string text =
      "usage: sy-trainer --standalone --data=FILE --steps=N [--workdir=DIR] [flags]\n"
      "Trains the byte-level Switch Transformer; prints a progress line per step and the\n"
      "parameter checksum at the end. Exit code 2 on bad flags.\n\nflags:\n";
  const TrainerOptions defaults;
  for (const FlagSpec& f : Flags()) {
    absl::StrAppendFormat(&text, "  --%-22s %s (default: %s)\n", f.name, f.help, f.show(defaults));
  }
  return text;
}

}  // namespace sy::cluster
