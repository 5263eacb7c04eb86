// Command-line options of sy-local, the loopback cluster launcher. sy-local's
// own flags (cluster shape, run, timeouts) are parsed here; every other flag is
// a model/training flag, checked by the trainer's parser (services/trainer,
// where those flags are defined once) and forwarded verbatim to each trainer
// and expert host. Parsing is a pure function of argv; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sy::local {

struct LauncherOptions {
  bool help = false;
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
  int64_t checkpoint_every = 0;  // --checkpoint_every: steps between automatic checkpoints (0: none)
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
  // Elasticity (0: never), once trainer 0 reported this step: start one more
  // sy-expert-host (index --hosts; the coordinator moves actors to it), or drain
  // the last host through the admin API (as `syctl drain`) and stop it once it
  // holds no actors. Both move actors through the latest checkpoint.
  int64_t add_host_at_step = 0;
  int64_t drain_host_at_step = 0;
  std::vector<std::string> model_flags;   // every other flag, as given ("--name=value")
};

// Parses argv[1..] ("--name=value" or "--name value"). InvalidArgument naming
// the flag for an unknown or malformed flag, a missing required flag, a flag
// that sy-local sets itself (e.g. --trainer_index) or an impossible cluster
// shape. Model flags are validated with the trainer's parser.
absl::StatusOr<LauncherOptions> ParseLauncherOptions(const std::vector<std::string>& args);

// Usage text: sy-local's own flags, then a pointer to `sy-trainer --help`.
std::string LauncherHelpText();

}  // namespace sy::local
