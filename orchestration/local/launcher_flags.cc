// Definitions of sy-local's own flags and the parsing of its command line (see launcher_flags.h).
#include "orchestration/local/launcher_flags.h"

#include <cstdint>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/flags/flags.h"
#include "common/flags/log_level_flag.h"
#include "common/flags/option_flags.h"
#include "services/cluster/model_flags.h"

namespace {
// The flags defined below with SY_OPTION_FLAG, each the copy of one LauncherOptions field.
struct LauncherFlagsName;
constexpr auto LauncherFlags = &sy::flags::OptionFlags<sy::local::LauncherOptions, LauncherFlagsName>;
}  // namespace

SY_OPTION_FLAG(LauncherFlags, int32_t, hosts,
               "expert hosts, at most 64 (0: one standalone process with every expert in-process)");
SY_OPTION_FLAG(LauncherFlags, int32_t, trainers, "trainer processes, at most 64 (1 when --hosts=0)");
SY_OPTION_FLAG(LauncherFlags, int64_t, steps, "global training steps (required)");
SY_OPTION_FLAG(LauncherFlags, std::string, data, "corpus file (required)");
SY_OPTION_FLAG(LauncherFlags, std::string, workdir,
               "directory for logs, ready files, metrics.jsonl and summary.json (required)");
SY_OPTION_FLAG(LauncherFlags, std::string, device, "device of every process: cpu or cuda:N");
SY_OPTION_FLAG(LauncherFlags, int32_t, threads,
               "compute threads per process, at most 1024 (0: the machine's cores divided between the processes)");
SY_OPTION_FLAG(LauncherFlags, std::string, bin_dir,
               "directory holding sy-trainer and sy-expert-host (empty: sy-local's own)");
SY_OPTION_FLAG(LauncherFlags, double, ready_timeout_s, "seconds to wait for every host's ready file");
SY_OPTION_FLAG(LauncherFlags, double, timeout_s, "seconds for the whole run, then everything is stopped (0: no limit)");
SY_OPTION_FLAG(LauncherFlags, double, grace_s, "seconds between SIGTERM and SIGKILL when stopping a process");
ABSL_FLAG(std::string, host_args, "", "extra flags for every sy-expert-host, space separated (e.g. --faults=SPEC)");
ABSL_FLAG(std::string, trainer_args, "", "extra flags for every sy-trainer, space separated");
SY_OPTION_FLAG(
    LauncherFlags, bool, coordinator,
    "true: start sy-coordinator (database in WORKDIR/coordinator.db); hosts and trainers register with it and "
    "take the placement from it; false: static placement");
SY_OPTION_FLAG(LauncherFlags, int64_t, checkpoint_every,
               "with the coordinator: a consistent checkpoint every N steps into its database (0: none)");
SY_OPTION_FLAG(LauncherFlags, std::string, restore_from,
               "resume from a checkpoint in this database (an earlier run's workdir or its coordinator.db)");
SY_OPTION_FLAG(LauncherFlags, int64_t, restore_checkpoint,
               "with --restore_from: the checkpoint id to resume from (0: the newest)");
SY_OPTION_FLAG(LauncherFlags, int32_t, redundancy,
               "with the coordinator: holders of every actor on distinct hosts (1-4, at most --hosts); with 2, a "
               "killed host fails over to the other holders without a checkpoint restore");
ABSL_FLAG(std::string, coordinator_args, "", "extra flags for sy-coordinator, space separated");
SY_OPTION_FLAG(LauncherFlags, bool, insecure,
               "plain TCP between the processes (default: fresh cluster keys in WORKDIR/keys, CurveZMQ everywhere)");
SY_OPTION_FLAG(
    LauncherFlags, int64_t, kill_host_at_step,
    "fault test: SIGKILL the last host once step K is done; the coordinator re-places its actors and the run "
    "replays from the latest checkpoint (0: never)");
SY_OPTION_FLAG(LauncherFlags, int64_t, kill_trainer_at_step,
               "fault test: SIGKILL the last trainer once step K is done; the others replay its micro-batches from the "
               "latest checkpoint (0: never)");
SY_OPTION_FLAG(LauncherFlags, int32_t, kill_trainer_index,
               "with --kill_trainer_at_step: the trainer to kill (0: the leader, which the next in line replaces, "
               "metrics.jsonl and summary.json included; -1: the last)");
SY_OPTION_FLAG(
    LauncherFlags, int64_t, kill_coordinator_at_step,
    "fault test: SIGKILL the coordinator once step K is done and restart it on the same database and endpoint "
    "(0: never)");
SY_OPTION_FLAG(
    LauncherFlags, int64_t, add_host_at_step,
    "elasticity: start one more expert host (index --hosts) once step K is done; the coordinator moves actors "
    "to it through the latest checkpoint; the trainers are paused (SIGSTOP, at most 1.5 s) until it "
    "registered (0: never)");
SY_OPTION_FLAG(
    LauncherFlags, int64_t, drain_host_at_step,
    "elasticity: drain the last host once step K is done (as `syctl drain host-N`), then stop it once it holds "
    "no actors; the trainers are paused during the admin call; the run finishes on the rest (0: never)");
SY_OPTION_FLAG(LauncherFlags, int32_t, kill_hosts,
               "fault test: with --kill_host_at_step, SIGKILL the last N hosts together (at least one must survive)");
SY_OPTION_FLAG(LauncherFlags, int64_t, kill_host_while_streaming_at_step,
               "fault test: the last host SIGKILLs itself mid-checkpoint at step K (a dense shard's state out, its "
               "experts' not); recovery replays from the checkpoint before (0: never)");
SY_OPTION_FLAG(LauncherFlags, int64_t, kill_host_at_apply_of_step,
               "fault test: the last host SIGKILLs itself when the apply of step K arrives, before applying it (the "
               "other hosts apply it); with --redundancy=2 the failover keeps step K (0: never)");
SY_OPTION_FLAG(LauncherFlags, std::string, kill_host_in_live_move,
               "fault test, with --drain_host_at_step: source: the drained host SIGKILLs itself in its first live "
               "move with the state in hand; destination: host-0 dies when a live move's first chunk reaches it; "
               "the coordinator recovers from the latest checkpoint (empty: none)");
SY_OPTION_FLAG(LauncherFlags, int64_t, kill_coordinator_before_manifest_of_checkpoint,
               "fault test: the coordinator SIGKILLs itself once checkpoint N's chunks are stored, before its manifest; "
               "sy-local restarts it on the same database and endpoint (0: never)");
SY_OPTION_FLAG(LauncherFlags, int64_t, stop_host_at_step,
               "fault test: SIGSTOP the last host once step K is done, SIGCONT it --stop_host_seconds later (0: never)");
SY_OPTION_FLAG(LauncherFlags, double, stop_host_seconds,
               "with --stop_host_at_step: seconds the host stays stopped, in (0, 600]");
SY_OPTION_FLAG(LauncherFlags, int64_t, stop_coordinator_at_step,
               "fault test: SIGSTOP the coordinator once step K is done, SIGCONT it --stop_coordinator_seconds later; "
               "training goes on meanwhile, and nobody is failed for the coordinator's own silence (0: never)");
SY_OPTION_FLAG(LauncherFlags, double, stop_coordinator_seconds,
               "with --stop_coordinator_at_step: seconds the coordinator stays stopped, in (0, 600]");

namespace sy::local {
namespace {

// Flags sy-local sets on the processes it starts: a user value would conflict.
absl::Status RefuseFlagsSetByLauncher(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--") break;
    const absl::string_view name = flags::FlagName(arg);
    for (const char* ours :
         {"standalone", "trainer_index", "num_trainers", "host_index", "num_hosts", "listen", "ready_file", "faults"}) {
      if (name == ours) return absl::InvalidArgumentError(absl::StrCat("--", name, " is set by sy-local itself"));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> Words(const std::string& text) { return absl::StrSplit(text, ' ', absl::SkipEmpty()); }

}  // namespace

absl::StatusOr<LauncherOptions> ParseLauncherOptions(const std::vector<std::string>& args) {
  if (absl::Status s = RefuseFlagsSetByLauncher(args); !s.ok()) return s;
  if (absl::Status s = flags::ParseFlagArgs(args); !s.ok()) return s;
  LauncherOptions o;
  LauncherFlags().ReadInto(&o);
  o.log_level = absl::GetFlag(FLAGS_log_level);
  o.host_args = Words(absl::GetFlag(FLAGS_host_args));
  o.trainer_args = Words(absl::GetFlag(FLAGS_trainer_args));
  o.coordinator_args = Words(absl::GetFlag(FLAGS_coordinator_args));
  o.model_flags = cluster::ChangedModelFlags();
  o.model.data = o.data;
  o.model.steps = o.steps;
  o.model.device = o.device;
  o.model.threads = o.threads;
  o.model.log_level = o.log_level;
  cluster::ReadModelFlags(&o.model);
  if (absl::Status s = CheckLauncherOptions(o); !s.ok()) return s;
  return o;
}

}  // namespace sy::local
