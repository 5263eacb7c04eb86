// Definitions of sy-local's own flags and the parsing of its command line (see launcher_flags.h).
#include "orchestration/local/launcher_flags.h"

#include <cstdint>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/flags/flags.h"
#include "common/flags/log_level_flag.h"
#include "services/cluster/model_flags.h"

// The defaults are the option structs' own (one source).
using sy::local::LauncherOptions;

ABSL_FLAG(int32_t, hosts, LauncherOptions().hosts,
          "expert hosts, at most 64 (0: one standalone process with every expert in-process)");
ABSL_FLAG(int32_t, trainers, LauncherOptions().trainers, "trainer processes, at most 64 (1 when --hosts=0)");
ABSL_FLAG(int64_t, steps, LauncherOptions().steps, "global training steps (required)");
ABSL_FLAG(std::string, data, LauncherOptions().data, "corpus file (required)");
ABSL_FLAG(std::string, workdir, LauncherOptions().workdir,
          "directory for logs, ready files, metrics.jsonl and summary.json (required)");
ABSL_FLAG(std::string, device, LauncherOptions().device, "device of every process: cpu or cuda:N");
ABSL_FLAG(int32_t, threads, LauncherOptions().threads,
          "compute threads per process, at most 1024 (0: the machine's cores divided between the processes)");
ABSL_FLAG(std::string, bin_dir, LauncherOptions().bin_dir,
          "directory holding sy-trainer and sy-expert-host (empty: sy-local's own)");
ABSL_FLAG(double, ready_timeout_s, LauncherOptions().ready_timeout_s, "seconds to wait for every host's ready file");
ABSL_FLAG(double, timeout_s, LauncherOptions().timeout_s,
          "seconds for the whole run, then everything is stopped (0: no limit)");
ABSL_FLAG(double, grace_s, LauncherOptions().grace_s, "seconds between SIGTERM and SIGKILL when stopping a process");
ABSL_FLAG(std::string, host_args, "", "extra flags for every sy-expert-host, space separated (e.g. --faults=SPEC)");
ABSL_FLAG(std::string, trainer_args, "", "extra flags for every sy-trainer, space separated");
ABSL_FLAG(bool, coordinator, LauncherOptions().coordinator,
          "true: start sy-coordinator (database in WORKDIR/coordinator.db); hosts and trainers register with it and "
          "take the placement from it; false: static placement");
ABSL_FLAG(int64_t, checkpoint_every, LauncherOptions().checkpoint_every,
          "with the coordinator: a consistent checkpoint every N steps into its database (0: none)");
ABSL_FLAG(std::string, restore_from, LauncherOptions().restore_from,
          "resume from a checkpoint in this database (an earlier run's workdir or its coordinator.db)");
ABSL_FLAG(int64_t, restore_checkpoint, LauncherOptions().restore_checkpoint,
          "with --restore_from: the checkpoint id to resume from (0: the newest)");
ABSL_FLAG(std::string, coordinator_args, "", "extra flags for sy-coordinator, space separated");
ABSL_FLAG(bool, insecure, LauncherOptions().insecure,
          "plain TCP between the processes (default: fresh cluster keys in WORKDIR/keys, CurveZMQ everywhere)");
ABSL_FLAG(int64_t, kill_host_at_step, LauncherOptions().kill_host_at_step,
          "fault test: SIGKILL the last host once step K is done; the coordinator re-places its actors and the run "
          "replays from the latest checkpoint (0: never)");
ABSL_FLAG(int64_t, kill_trainer_at_step, LauncherOptions().kill_trainer_at_step,
          "fault test: SIGKILL the last trainer once step K is done; the others replay its micro-batches from the "
          "latest checkpoint (0: never)");
ABSL_FLAG(int32_t, kill_trainer_index, LauncherOptions().kill_trainer_index,
          "with --kill_trainer_at_step: the trainer to kill (0: the leader, which the next in line replaces, "
          "metrics.jsonl and summary.json included; -1: the last)");
ABSL_FLAG(int64_t, kill_coordinator_at_step, LauncherOptions().kill_coordinator_at_step,
          "fault test: SIGKILL the coordinator once step K is done and restart it on the same database and endpoint "
          "(0: never)");
ABSL_FLAG(int64_t, add_host_at_step, LauncherOptions().add_host_at_step,
          "elasticity: start one more expert host (index --hosts) once step K is done; the coordinator moves actors "
          "to it through the latest checkpoint; the trainers are paused (SIGSTOP, at most 1.5 s) until it "
          "registered (0: never)");
ABSL_FLAG(int64_t, drain_host_at_step, LauncherOptions().drain_host_at_step,
          "elasticity: drain the last host once step K is done (as `syctl drain host-N`), then stop it once it holds "
          "no actors; the trainers are paused during the admin call; the run finishes on the rest (0: never)");
ABSL_FLAG(int32_t, kill_hosts, LauncherOptions().kill_hosts,
          "fault test: with --kill_host_at_step, SIGKILL the last N hosts together (at least one must survive)");
ABSL_FLAG(int64_t, kill_host_while_streaming_at_step, LauncherOptions().kill_host_while_streaming_at_step,
          "fault test: the last host SIGKILLs itself mid-checkpoint at step K (a dense shard's state out, its "
          "experts' not); recovery replays from the checkpoint before (0: never)");
ABSL_FLAG(int64_t, kill_coordinator_before_manifest_of_checkpoint,
          LauncherOptions().kill_coordinator_before_manifest_of_checkpoint,
          "fault test: the coordinator SIGKILLs itself once checkpoint N's chunks are stored, before its manifest; "
          "sy-local restarts it on the same database and endpoint (0: never)");
ABSL_FLAG(int64_t, stop_host_at_step, LauncherOptions().stop_host_at_step,
          "fault test: SIGSTOP the last host once step K is done, SIGCONT it --stop_host_seconds later (0: never)");
ABSL_FLAG(double, stop_host_seconds, LauncherOptions().stop_host_seconds,
          "with --stop_host_at_step: seconds the host stays stopped, in (0, 600]");

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
  o.hosts = absl::GetFlag(FLAGS_hosts);
  o.trainers = absl::GetFlag(FLAGS_trainers);
  o.steps = absl::GetFlag(FLAGS_steps);
  o.data = absl::GetFlag(FLAGS_data);
  o.workdir = absl::GetFlag(FLAGS_workdir);
  o.device = absl::GetFlag(FLAGS_device);
  o.threads = absl::GetFlag(FLAGS_threads);
  o.log_level = absl::GetFlag(FLAGS_log_level);
  o.bin_dir = absl::GetFlag(FLAGS_bin_dir);
  o.ready_timeout_s = absl::GetFlag(FLAGS_ready_timeout_s);
  o.timeout_s = absl::GetFlag(FLAGS_timeout_s);
  o.grace_s = absl::GetFlag(FLAGS_grace_s);
  o.host_args = Words(absl::GetFlag(FLAGS_host_args));
  o.trainer_args = Words(absl::GetFlag(FLAGS_trainer_args));
  o.coordinator = absl::GetFlag(FLAGS_coordinator);
  o.insecure = absl::GetFlag(FLAGS_insecure);
  o.checkpoint_every = absl::GetFlag(FLAGS_checkpoint_every);
  o.restore_from = absl::GetFlag(FLAGS_restore_from);
  o.restore_checkpoint = absl::GetFlag(FLAGS_restore_checkpoint);
  o.coordinator_args = Words(absl::GetFlag(FLAGS_coordinator_args));
  o.kill_host_at_step = absl::GetFlag(FLAGS_kill_host_at_step);
  o.kill_trainer_at_step = absl::GetFlag(FLAGS_kill_trainer_at_step);
  o.kill_trainer_index = absl::GetFlag(FLAGS_kill_trainer_index);
  o.kill_coordinator_at_step = absl::GetFlag(FLAGS_kill_coordinator_at_step);
  o.add_host_at_step = absl::GetFlag(FLAGS_add_host_at_step);
  o.drain_host_at_step = absl::GetFlag(FLAGS_drain_host_at_step);
  o.kill_hosts = absl::GetFlag(FLAGS_kill_hosts);
  o.kill_host_while_streaming_at_step = absl::GetFlag(FLAGS_kill_host_while_streaming_at_step);
  o.kill_coordinator_before_manifest_of_checkpoint = absl::GetFlag(FLAGS_kill_coordinator_before_manifest_of_checkpoint);
  o.stop_host_at_step = absl::GetFlag(FLAGS_stop_host_at_step);
  o.stop_host_seconds = absl::GetFlag(FLAGS_stop_host_seconds);
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
