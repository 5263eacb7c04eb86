// Definitions of sy-expert-host's own flags and the parsing of its command line (see host_flags.h).
#include "services/expert_host/host_flags.h"

#include <cstdint>
#include <optional>

#include "absl/flags/flag.h"
#include "common/flags/flags.h"
#include "services/cluster/node_flags.h"

// The defaults are the option structs' own (one source).
using sy::cluster::HostOptions;

ABSL_FLAG(std::string, listen, HostOptions().listen, "ZeroMQ endpoint to bind (port 0: a free port)");
ABSL_FLAG(std::string, advertise_host, HostOptions().advertise_host,
          "the name other machines reach this host at, registered with the coordinator and written to "
          "--ready_file (empty: the --listen address, or this machine's hostname when listening on all interfaces)");
ABSL_FLAG(std::string, ready_file, HostOptions().ready_file,
          "once listening, write the bound endpoint here (atomically)");
ABSL_FLAG(int32_t, host_index, HostOptions().host_index,
          "this host i of --num_hosts (its share of the static placement)");
ABSL_FLAG(int32_t, num_hosts, HostOptions().num_hosts, "expert hosts H of the static placement");
ABSL_FLAG(double, step_timeout_s, HostOptions().step_timeout_s,
          "a step incomplete this long (seconds, in (0, 86400]) is reported");
ABSL_FLAG(int32_t, metrics_port, HostOptions().metrics_port,
          "port of the /metrics HTTP endpoint; 0 picks a free port, -1 disables it");
ABSL_FLAG(int32_t, checkpoint_every, HostOptions().checkpoint_every,
          "keep actor state at recent multiples of N steps for checkpoints (0: none)");
ABSL_FLAG(std::optional<int64_t>, fail_checkpoint_at_step, std::nullopt,
          "fault injection (tests): experts refuse to stream the checkpoint at step S (unset: never)");

ABSL_FLAG(std::optional<int64_t>, kill_self_while_streaming_at_step, std::nullopt,
          "fault injection (tests): at the checkpoint of step S the experts hold their state back and this process "
          "SIGKILLs itself once a dense shard's state went out, mid-checkpoint (unset: never)");

namespace sy::expert_host {

absl::StatusOr<cluster::HostOptions> ParseHostOptions(const std::vector<std::string>& args) {
  if (absl::Status s = flags::ParseFlagArgs(args); !s.ok()) return s;
  cluster::HostOptions o;
  o.model = cluster::ReadNodeFlags();
  o.listen = absl::GetFlag(FLAGS_listen);
  o.advertise_host = absl::GetFlag(FLAGS_advertise_host);
  o.ready_file = absl::GetFlag(FLAGS_ready_file);
  o.host_index = absl::GetFlag(FLAGS_host_index);
  o.num_hosts = absl::GetFlag(FLAGS_num_hosts);
  o.step_timeout_s = absl::GetFlag(FLAGS_step_timeout_s);
  o.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  o.faults = absl::GetFlag(FLAGS_faults);
  o.security = cluster::ReadSecurityFlags();
  o.coordinator = absl::GetFlag(FLAGS_coordinator);
  o.checkpoint_every = absl::GetFlag(FLAGS_checkpoint_every);
  o.fail_checkpoint_at_step = absl::GetFlag(FLAGS_fail_checkpoint_at_step);
  o.kill_self_while_streaming_at_step = absl::GetFlag(FLAGS_kill_self_while_streaming_at_step);
  if (absl::Status s = cluster::CheckHostOptions(o); !s.ok()) return s;
  if (absl::Status s = cluster::CheckNodeSecurity(o.security); !s.ok()) return s;
  return o;
}

}  // namespace sy::expert_host
