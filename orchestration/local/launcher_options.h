// The options of sy-local, the loopback cluster launcher, as a plain struct with its
// checks (a pure function; thread-safe). The flags that fill it are in
// launcher_flags.h: sy-local's own (cluster shape, run, timeouts, fault injection)
// and the model and training flags of services/cluster, which it checks and forwards
// to each trainer and expert host.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "services/cluster/options.h"

namespace sy::local {

struct LauncherOptions {
  int hosts = 0;            // --hosts: expert hosts (0: one standalone process, the reference)
  int trainers = 1;         // --trainers: trainer processes (must be 1 with --hosts=0)
  int64_t steps = 0;        // --steps: global steps (required)
  std::string data;         // --data: corpus file (required)
  std::string workdir;      // --workdir: logs, ready files, metrics.jsonl, summary.json (required)
  std::string device = "cpu";
  int threads = 0;          // --threads: per-process compute threads (0: split the cores)
  std::string log_level = "info";
  std::string bin_dir;      // --bin_dir: where sy-trainer / sy-expert-host are ("" = next to sy-local)
  double ready_timeout_s = 60;  // --ready_timeout_s: wait for every host's ready file
  double timeout_s = 0;         // --timeout_s: whole run (0: none)
  double grace_s = 10;          // --grace_s: SIGTERM -> SIGKILL delay when stopping processes
  std::vector<std::string> host_args;     // --host_args: extra flags for every host (space separated)
  std::vector<std::string> trainer_args;  // --trainer_args: extra flags for every trainer
  bool coordinator = true;  // --coordinator: run sy-coordinator (with --hosts >= 1); false: static placement
  // --insecure: the processes run plain TCP; by default sy-local writes a cluster key
  // directory, WORKDIR/keys, and every process runs CurveZMQ with it.
  bool insecure = false;
  int64_t checkpoint_every = 0;  // --checkpoint_every: steps between automatic checkpoints (0: none)
  int32_t redundancy = 1;        // --redundancy: holders of every actor (sy-coordinator --redundancy)
  std::string restore_from;      // --restore_from: an earlier run's workdir or its coordinator.db
  int64_t restore_checkpoint = 0;  // --restore_checkpoint: checkpoint id to resume from (0: the newest)
  std::vector<std::string> coordinator_args;  // --coordinator_args: extra flags for sy-coordinator
  // Fault injection (0: none): SIGKILL the last host / the last trainer / the
  // coordinator once trainer 0 reported this step; the coordinator is restarted
  // on the same database and endpoint.
  int64_t kill_host_at_step = 0;
  int64_t kill_trainer_at_step = 0;
  int kill_trainer_index = -1;  // --kill_trainer_index: which trainer it kills (-1: the last)
  int64_t kill_coordinator_at_step = 0;
  int kill_hosts = 1;  // --kill_hosts: with --kill_host_at_step, the last N hosts die together
  // Fault injection at exact points, by the processes themselves (0: none): the last
  // host SIGKILLs itself mid-checkpoint at this step, a dense shard's state out and its
  // experts' not (--kill_self_while_streaming_at_step); the coordinator SIGKILLs itself before the
  // manifest of checkpoint N (--kill_self_before_manifest_of_checkpoint) and sy-local
  // restarts it, without that flag, on the same database and endpoint.
  int64_t kill_host_while_streaming_at_step = 0;
  // --kill_host_at_apply_of_step (0: never): the last host SIGKILLs itself when the apply of
  // this step arrives, before applying it (--kill_self_at_apply_of_step).
  int64_t kill_host_at_apply_of_step = 0;
  int64_t kill_coordinator_before_manifest_of_checkpoint = 0;
  // --stop_host_at_step / --stop_host_seconds (0: never): SIGSTOP the last host once
  // trainer 0 reported this step, SIGCONT it that many seconds later.
  int64_t stop_host_at_step = 0;
  double stop_host_seconds = 0;
  // --stop_coordinator_at_step / --stop_coordinator_seconds (0: never): the same for the
  // coordinator.
  int64_t stop_coordinator_at_step = 0;
  double stop_coordinator_seconds = 0;
  // Elasticity (0: never), once trainer 0 reported this step: start one more
  // sy-expert-host (index --hosts; the coordinator moves actors to it), or drain
  // the last host through the admin API (as `syctl drain`) and stop it once it
  // holds no actors. Both move actors live (the coordinator falls back to the latest
  // checkpoint when it cannot).
  int64_t add_host_at_step = 0;
  int64_t drain_host_at_step = 0;
  // With --drain_host_at_step (fault test; "": none): "source": the drained host SIGKILLs
  // itself in its first live move, with the state in hand; "destination": host-0 dies
  // when the first chunk of a live move reaches it. The coordinator recovers from the
  // latest checkpoint.
  std::string kill_host_in_live_move;
  std::vector<std::string> model_flags;   // the model/training flags given ("--name=value"), forwarded
  // The model and training values (model_flags over the defaults) with --data, --steps,
  // --device, --threads and --log_level: the model the children build (its shape and seed
  // go to sy-coordinator).
  cluster::TrainerOptions model;
};

// The ranges of sy-local's own fields, the required ones (--data, --steps, --workdir),
// a possible cluster shape for the fault injection and elasticity flags, and `model`
// (cluster::CheckTrainerOptions). InvalidArgument naming the flag.
absl::Status CheckLauncherOptions(const LauncherOptions& options);

}  // namespace sy::local
