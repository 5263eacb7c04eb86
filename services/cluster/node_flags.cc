// Definitions of the flags every training node has (see node_flags.h).
#include "services/cluster/node_flags.h"

#include <cstdint>

#include "absl/flags/flag.h"
#include "common/flags/log_level_flag.h"
#include "services/cluster/model_flags.h"

// The defaults are the option structs' own (one source).
using sy::cluster::TrainerOptions;

ABSL_FLAG(bool, standalone, TrainerOptions().standalone, "train in one process with every expert in-process");
ABSL_FLAG(std::string, data, TrainerOptions().data,
          "corpus file (raw bytes; the last 10% is the validation split); a trainer needs it");
ABSL_FLAG(int64_t, steps, TrainerOptions().steps, "global training steps; a trainer needs it");
ABSL_FLAG(std::string, workdir, TrainerOptions().workdir,
          "directory for metrics.jsonl and summary.json (empty: write none)");
ABSL_FLAG(std::string, device, TrainerOptions().device, "compute device: cpu or cuda:N");
ABSL_FLAG(int32_t, threads, TrainerOptions().threads, "compute threads, OpenBLAS included (0: all cores)");
ABSL_FLAG(std::string, coordinator, "",
          "sy-coordinator endpoint: register with it and take the placement from it; trainers report load "
          "(empty: none, the static placement)");
ABSL_FLAG(std::string, faults, "", "transport faults, e.g. drop=0.1,dup=0.05,seed=7 (tests; empty: none)");

namespace sy::cluster {

TrainerOptions ReadNodeFlags() {
  TrainerOptions o;
  o.standalone = absl::GetFlag(FLAGS_standalone);
  o.data = absl::GetFlag(FLAGS_data);
  o.steps = absl::GetFlag(FLAGS_steps);
  o.workdir = absl::GetFlag(FLAGS_workdir);
  o.device = absl::GetFlag(FLAGS_device);
  o.threads = absl::GetFlag(FLAGS_threads);
  o.log_level = absl::GetFlag(FLAGS_log_level);
  ReadModelFlags(&o);
  return o;
}

}  // namespace sy::cluster
