// Definitions of sy-trainer's own flags and the parsing of its command line (see trainer_flags.h).
#include "services/trainer/trainer_flags.h"

#include <cstdint>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "common/flags/flags.h"
#include "services/cluster/node_flags.h"

// The defaults are the option structs' own (one source).
using sy::cluster::ClusterTrainerOptions;

ABSL_FLAG(std::string, hosts, "", "expert host endpoints EP1,EP2,..., host i first (required without --standalone)");
ABSL_FLAG(int32_t, trainer_index, ClusterTrainerOptions().trainer_index,
          "this trainer t (0 leads: metrics, validation, checksum)");
ABSL_FLAG(int32_t, num_trainers, ClusterTrainerOptions().num_trainers,
          "trainers T; trainer t takes micro-batches m % T == t");
ABSL_FLAG(double, rpc_timeout_s, ClusterTrainerOptions().rpc_timeout_s,
          "deadline of one request in seconds, retries included, in (0, 86400]");
ABSL_FLAG(int32_t, resume_step, ClusterTrainerOptions().resume_step,
          "the hosts hold the state after step S (a restored checkpoint): training starts at S+1");
ABSL_FLAG(double, recovery_timeout_s, ClusterTrainerOptions().recovery_timeout_s,
          "with --coordinator: a step that fails with Unavailable, Aborted or DeadlineExceeded (a host lost) "
          "waits this long for the coordinator's rollback, then replays from the restored step; no rollback in "
          "time ends the trainer with an error; in (0, 86400]");

namespace sy::trainer {

absl::StatusOr<cluster::ClusterTrainerOptions> ParseClusterTrainerOptions(const std::vector<std::string>& args) {
  if (absl::Status s = flags::ParseFlagArgs(args); !s.ok()) return s;
  cluster::ClusterTrainerOptions o;
  o.base = cluster::ReadNodeFlags();
  for (absl::string_view ep : absl::StrSplit(absl::GetFlag(FLAGS_hosts), ',', absl::SkipEmpty())) {
    o.hosts.emplace_back(ep);
  }
  o.trainer_index = absl::GetFlag(FLAGS_trainer_index);
  o.num_trainers = absl::GetFlag(FLAGS_num_trainers);
  o.rpc_timeout_s = absl::GetFlag(FLAGS_rpc_timeout_s);
  cluster::ReadClusterFlags(&o);
  o.recovery_timeout_s = absl::GetFlag(FLAGS_recovery_timeout_s);
  o.resume_step = absl::GetFlag(FLAGS_resume_step);
  if (absl::Status s = cluster::CheckClusterTrainerOptions(o); !s.ok()) return s;
  if (!o.base.standalone) {
    if (absl::Status s = cluster::CheckNodeSecurity(o.security); !s.ok()) return s;
  }
  return o;
}

}  // namespace sy::trainer
