// sy-expert-host's command line: its own flags (--listen, --advertise_host, --ready_file,
// --host_index, --num_hosts, --step_timeout_s, --metrics_port, --checkpoint_every,
// --fail_checkpoint_at_step) defined here (library sy_expert_host_flags, linked by
// sy-expert-host and its tests only), on top of the nodes' flags and the model and
// training flags of services/cluster.
//
// Flags are process-global: not thread-safe; call from main() or a test.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/cluster/cluster_options.h"

namespace sy::expert_host {

inline constexpr char kHostUsage[] =
    "usage: sy-expert-host --listen=tcp://127.0.0.1:0 --ready_file=PATH --host_index=i --num_hosts=H\n"
    "         [--advertise_host=NAME] [--device=cpu|cuda:N] [--threads=N] [--coordinator=EP] [flags]\n"
    "         [model/training flags of sy-trainer]\n"
    "Serves the experts and dense parameter shards this host owns under the static placement;\n"
    "writes the bound endpoint to --ready_file; runs until SIGTERM/SIGINT. Others reach it at\n"
    "tcp://NAME:PORT, NAME = --advertise_host, or the --listen address (this machine's hostname\n"
    "when listening on all interfaces); that endpoint is registered with the coordinator.\n"
    "Exit codes: 0 stopped by a signal, 1 failed to start, 2 bad flags.\n";

// The host's options from `args` (argv without argv[0]), every flag not given at its
// default (flags::ParseArgs), so a pure function of `args`; checked with CheckHostOptions
// and CheckNodeSecurity, InvalidArgument naming the flag otherwise. --help is main()'s.
absl::StatusOr<cluster::HostOptions> ParseHostOptions(const std::vector<std::string>& args);

}  // namespace sy::expert_host
