// Definitions of sy-expert-host's own flags and the parsing of its command line (see host_flags.h).
#include "services/expert_host/host_flags.h"

#include <cstdint>
#include <optional>

#include "absl/flags/flag.h"
#include "common/flags/flags.h"
#include "common/flags/option_flags.h"
#include "services/cluster/node_flags.h"

namespace {
// The flags defined below, each the copy of one HostOptions field.
struct HostFlagsName;
constexpr auto HostFlags = &sy::flags::OptionFlags<sy::cluster::HostOptions, HostFlagsName>;
}  // namespace

SY_OPTION_FLAG(HostFlags, std::string, listen, "ZeroMQ endpoint to bind (port 0: a free port)");
SY_OPTION_FLAG(
    HostFlags, std::string, advertise_host,
    "the name other machines reach this host at, registered with the coordinator and written to "
    "--ready_file (empty: the --listen address, or this machine's hostname when listening on all interfaces)");
SY_OPTION_FLAG(HostFlags, std::string, ready_file, "once listening, write the bound endpoint here (atomically)");
SY_OPTION_FLAG(HostFlags, int32_t, host_index, "this host i of --num_hosts (its share of the static placement)");
SY_OPTION_FLAG(HostFlags, int32_t, num_hosts, "expert hosts H of the static placement");
SY_OPTION_FLAG(HostFlags, double, step_timeout_s, "a step incomplete this long (seconds, in (0, 86400]) is reported");
SY_OPTION_FLAG(HostFlags, int32_t, metrics_port,
               "port of the /metrics HTTP endpoint; 0 picks a free port, -1 disables it");
SY_OPTION_FLAG(HostFlags, int32_t, checkpoint_every,
               "keep actor state at recent multiples of N steps for checkpoints (0: none)");
SY_OPTION_FLAG(HostFlags, std::optional<int64_t>, fail_checkpoint_at_step,
               "fault injection (tests): experts refuse to stream the checkpoint at step S (unset: never)");

SY_OPTION_FLAG(HostFlags, std::optional<int64_t>, kill_self_while_streaming_at_step,
               "fault injection (tests): at the checkpoint of step S the experts hold their state back and this "
               "process SIGKILLs itself once a dense shard's state went out, mid-checkpoint (unset: never)");

SY_OPTION_FLAG(HostFlags, std::optional<int64_t>, kill_self_at_apply_of_step,
               "fault injection (tests): SIGKILL this process when a trainer's apply of step S arrives, before "
               "applying it, so that the other hosts apply the step and this one does not (unset: never)");

SY_OPTION_FLAG(HostFlags, std::string, kill_self_in_live_move,
               "fault injection (tests): SIGKILL this process in its first live move, as the host the actor leaves "
               "(source: with the state in hand, before streaming it) or the one it goes to (destination: when the "
               "first chunk arrives); empty: never");

SY_OPTION_FLAG(HostFlags, double, emulate_device_gflops,
               "benchmarks: each expert bucket (forward or backward) takes at least its FLOPs / G GFLOP/s of wall "
               "time, as on a device of G GFLOP/s, the results unchanged (0: off)");

namespace sy::expert_host {

absl::StatusOr<cluster::HostOptions> ParseHostOptions(const std::vector<std::string>& args) {
  if (absl::Status s = flags::ParseFlagArgs(args); !s.ok()) return s;
  cluster::HostOptions o;
  o.model = cluster::ReadNodeFlags();
  HostFlags().ReadInto(&o);
  cluster::ReadClusterFlags(&o);
  if (absl::Status s = cluster::CheckHostOptions(o); !s.ok()) return s;
  if (absl::Status s = cluster::CheckNodeSecurity(o.security); !s.ok()) return s;
  return o;
}

}  // namespace sy::expert_host
