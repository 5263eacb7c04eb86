// The options of the distributed processes on top of the shared TrainerOptions
// (options.h): a trainer's place in the cluster (ClusterTrainerOptions) and an expert
// host's (HostOptions), as plain structs with their checks, pure functions. Their flags
// are defined with the binaries that own them (services/trainer/trainer_flags.h,
// services/expert_host/host_flags.h); the ones both share (--coordinator, --faults) in
// node_flags.h. Thread-safe (no shared state).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "services/cluster/cluster_keys.h"
#include "services/cluster/options.h"

namespace sy::cluster {

struct ClusterTrainerOptions {
  TrainerOptions base;
  std::vector<std::string> hosts;  // --hosts=EP1,EP2: host i's endpoint
  int trainer_index = 0;           // --trainer_index: t; trainer 0 leads
  int num_trainers = 1;            // --num_trainers: T; trainer t takes micro-batches m % T == t
  double rpc_timeout_s = 600;      // --rpc_timeout_s: deadline of one request (retries included)
  std::string faults;              // --faults: transport fault spec (common/transport/faulty_transport.h)
  NodeSecurity security;           // --keys / --insecure (not needed with --standalone)
  std::string coordinator;         // --coordinator: sy-coordinator endpoint ("" = static placement, no coordinator)
  double recovery_timeout_s = 120; // --recovery_timeout_s: with --coordinator, how long a trainer whose step
                                   // failed (host lost) waits for the coordinator's rollback before giving up
  int resume_step = 0;             // --resume_step: the hosts hold the state after this step (a restored
                                   // checkpoint): training starts at resume_step+1
};

// CheckTrainerOptions of `base` (a trainer: --data and --steps required), the ranges of
// the cluster fields, then, without --standalone: --hosts given, resume_step < steps and
// trainer_index < num_trainers. InvalidArgument naming the flag.
absl::Status CheckClusterTrainerOptions(const ClusterTrainerOptions& options);

struct HostOptions {
  TrainerOptions model;               // model/training flags (--data and --steps not needed)
  std::string listen = "tcp://127.0.0.1:0";  // port 0: a free port
  // The name other machines reach this host at, registered with the coordinator and
  // written to --ready_file ("" = the --listen address, or this machine's hostname
  // when listening on all interfaces, e.g. tcp://0.0.0.0:5555).
  std::string advertise_host;
  std::string ready_file;             // the bound endpoint is written here (tmp + rename)
  int host_index = 0;
  int num_hosts = 1;
  double step_timeout_s = 60;         // a step incomplete this long is reported
  int metrics_port = -1;              // /metrics port; 0 picks one, -1 disables
  std::string faults;
  NodeSecurity security;              // --keys / --insecure
  std::string coordinator;            // sy-coordinator endpoint to register with ("" = none)
  int checkpoint_every = 0;           // keep actor state at recent multiples of it for checkpoints (0: none)
  // Fault injection (tests): experts refuse to stream the checkpoint at this step; unset: never.
  std::optional<int64_t> fail_checkpoint_at_step;
  // Fault injection (tests): SIGKILL mid-checkpoint at this step (a dense shard's state out, the experts' not); unset: never.
  std::optional<int64_t> kill_self_while_streaming_at_step;
  // Fault injection (tests): SIGKILL when the apply of this step arrives, before applying it
  // (the other hosts apply it); unset: never.
  std::optional<int64_t> kill_self_at_apply_of_step;
  // Fault injection (tests): SIGKILL in the middle of the first live move this host takes
  // part in: "source" once it holds the moving actor's state, before streaming it;
  // "destination" when the first chunk arrives; "": never.
  std::string kill_self_in_live_move;
  // Benchmarks: each expert bucket takes at least its FLOPs / G GFLOP/s of wall time (0: off).
  double emulate_device_gflops = 0;
};

// CheckTrainerOptions of `model` (--data and --steps not needed), the ranges of the
// host fields, host_index < num_hosts, a --listen endpoint and an --advertise_host that
// is a bare host name. InvalidArgument naming the flag.
absl::Status CheckHostOptions(const HostOptions& options);

}  // namespace sy::cluster
