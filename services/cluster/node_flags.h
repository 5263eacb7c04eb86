// The flags of every node that trains, sy-trainer and sy-expert-host, besides the model
// and training flags (model_flags.h), defined once here (library sy_node_flags): the
// run (--standalone, --data, --steps, --workdir), the compute (--device, --threads), and
// the cluster flags both share (--coordinator, --faults; --keys and --insecure from security_flags.h). An expert host takes the run
// flags too, so one command line serves hosts and trainers; it ignores them.
//
// Flags are process-global: not thread-safe; call from main() or a test.
#pragma once

#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "services/cluster/options.h"
#include "services/cluster/security_flags.h"

ABSL_DECLARE_FLAG(std::string, coordinator);
ABSL_DECLARE_FLAG(std::string, faults);

namespace sy::cluster {

// The run, compute, --log_level, model and training flags as TrainerOptions (no checks:
// CheckTrainerOptions and the checks built on it are the callers').
TrainerOptions ReadNodeFlags();

// The cluster flags both node kinds share into the fields of the same names of their
// options (HostOptions, ClusterTrainerOptions): --coordinator, --faults, and --keys /
// --insecure as `security` (no checks: CheckNodeSecurity is the callers').
template <class NodeOptions>
void ReadClusterFlags(NodeOptions* options) {
  options->coordinator = absl::GetFlag(FLAGS_coordinator);
  options->faults = absl::GetFlag(FLAGS_faults);
  options->security = ReadSecurityFlags();
}

}  // namespace sy::cluster
