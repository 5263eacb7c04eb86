// Definitions of the flags every training node has (see node_flags.h).
#include "services/cluster/node_flags.h"

#include <cstdint>

#include "absl/flags/flag.h"
#include "common/flags/log_level_flag.h"
#include "common/flags/option_flags.h"
#include "services/cluster/model_flags.h"

namespace {
// The run and compute flags defined below, each the copy of one TrainerOptions field.
struct RunFlagsName;
constexpr auto RunFlags = &sy::flags::OptionFlags<sy::cluster::TrainerOptions, RunFlagsName>;
}  // namespace

SY_OPTION_FLAG(RunFlags, bool, standalone, "train in one process with every expert in-process");
SY_OPTION_FLAG(RunFlags, std::string, data,
               "corpus file (raw bytes; the last 10% is the validation split); a trainer needs it");
SY_OPTION_FLAG(RunFlags, int64_t, steps, "global training steps; a trainer needs it");
SY_OPTION_FLAG(RunFlags, std::string, workdir, "directory for metrics.jsonl and summary.json (empty: write none)");
SY_OPTION_FLAG(RunFlags, std::string, device, "compute device: cpu or cuda:N");
SY_OPTION_FLAG(RunFlags, int32_t, threads, "compute threads, OpenBLAS included (0: all cores)");
ABSL_FLAG(std::string, coordinator, "",
          "sy-coordinator endpoint: register with it and take the placement from it; trainers report load "
          "(empty: none, the static placement)");
ABSL_FLAG(std::string, faults, "", "transport faults, e.g. drop=0.1,dup=0.05,seed=7 (tests; empty: none)");

namespace sy::cluster {

TrainerOptions ReadNodeFlags() {
  TrainerOptions o;
  RunFlags().ReadInto(&o);
  o.log_level = absl::GetFlag(FLAGS_log_level);
  ReadModelFlags(&o);
  return o;
}

}  // namespace sy::cluster
