// sy-trainer's command line: its own flags (--hosts, --trainer_index, --num_trainers,
// --rpc_timeout_s, --resume_step, --recovery_timeout_s) defined here (library
// sy_trainer_flags, linked by sy-trainer and its tests only), on top of the nodes'
// flags and the model and training flags of services/cluster.
//
// Flags are process-global: not thread-safe; call from main() or a test.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/cluster/cluster_options.h"

namespace sy::trainer {

inline constexpr char kTrainerUsage[] =
    "usage: sy-trainer --standalone --data=FILE --steps=N [--workdir=DIR] [flags]\n"
    "       sy-trainer --hosts=EP1,EP2,... [--trainer_index=t --num_trainers=T] [--coordinator=EP]\n"
    "                  --data=FILE --steps=N [--workdir=DIR] [flags]\n"
    "Trains the byte-level Switch Transformer, in one process (--standalone) or as trainer t of T\n"
    "against expert hosts; prints a progress line per step and the parameter checksum at the end.\n"
    "Exit codes: 0 done, 1 training failed, 2 bad flags.\n";

// Parses `args` (argv without argv[0]) over the flags' defaults into the options, checked
// with CheckClusterTrainerOptions; InvalidArgument naming the flag. A pure function of
// `args` (flags::ParseArgs). --help is main()'s (flags::ExitWithHelpIfRequested).
absl::StatusOr<cluster::ClusterTrainerOptions> ParseClusterTrainerOptions(const std::vector<std::string>& args);

}  // namespace sy::trainer
