// The checks of sy-local's options (see launcher_options.h).
#include "orchestration/local/launcher_options.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/flags/flags.h"

namespace sy::local {
namespace {

constexpr int kMaxHosts = 64;
constexpr int kMaxTrainers = 64;
constexpr double kMaxSeconds = 1e7;
constexpr double kMaxStopSeconds = 600;

absl::Status CheckRanges(const LauncherOptions& o) {
  using flags::RequireInRange;
  using flags::RequireNonNegative;
  return flags::FirstFailure({
      RequireInRange("hosts", int64_t{o.hosts}, 0, kMaxHosts),
      RequireInRange("trainers", int64_t{o.trainers}, 1, kMaxTrainers),
      flags::RequirePositive("steps", o.steps),
      RequireInRange("threads", int64_t{o.threads}, 0, 1024),
      RequireInRange("ready_timeout_s", o.ready_timeout_s, 0.0, kMaxSeconds),
      RequireInRange("timeout_s", o.timeout_s, 0.0, kMaxSeconds),
      RequireInRange("grace_s", o.grace_s, 0.0, kMaxSeconds),
      RequireNonNegative("checkpoint_every", o.checkpoint_every),
      RequireInRange("redundancy", int64_t{o.redundancy}, 1, std::max<int64_t>(1, std::min<int64_t>(4, o.hosts))),
      RequireNonNegative("restore_checkpoint", o.restore_checkpoint),
      RequireNonNegative("kill_host_at_step", o.kill_host_at_step),
      RequireNonNegative("kill_trainer_at_step", o.kill_trainer_at_step),
      RequireInRange("kill_trainer_index", int64_t{o.kill_trainer_index}, -1, kMaxTrainers - 1),
      RequireNonNegative("kill_coordinator_at_step", o.kill_coordinator_at_step),
      RequireNonNegative("add_host_at_step", o.add_host_at_step),
      RequireNonNegative("drain_host_at_step", o.drain_host_at_step),
      RequireInRange("kill_hosts", int64_t{o.kill_hosts}, 1, kMaxHosts - 1),
      RequireNonNegative("kill_host_while_streaming_at_step", o.kill_host_while_streaming_at_step),
      RequireNonNegative("kill_host_at_apply_of_step", o.kill_host_at_apply_of_step),
      RequireNonNegative("kill_coordinator_before_manifest_of_checkpoint",
                         o.kill_coordinator_before_manifest_of_checkpoint),
      RequireNonNegative("stop_host_at_step", o.stop_host_at_step),
      RequireInRange("stop_host_seconds", o.stop_host_seconds, 0.0, kMaxStopSeconds),
      RequireNonNegative("stop_coordinator_at_step", o.stop_coordinator_at_step),
      RequireInRange("stop_coordinator_seconds", o.stop_coordinator_seconds, 0.0, kMaxStopSeconds),
  });
}

// --kill_hosts, --kill_host_while_streaming_at_step, --kill_coordinator_before_manifest_of_checkpoint
// and --stop_host_*: each with what it needs, none of them picking a host another flag picks.
absl::Status CheckExactFaults(const LauncherOptions& o) {
  if (o.kill_hosts > 1 && o.kill_host_at_step == 0) {
    return absl::InvalidArgumentError("--kill_hosts needs --kill_host_at_step");
  }
  const int64_t every = o.checkpoint_every;
  const int64_t streaming = o.kill_host_while_streaming_at_step;
  if (streaming > 0 && (every == 0 || streaming % every != 0 || streaming < 2 * every)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--kill_host_while_streaming_at_step=", streaming, " must be a checkpoint step after the first (a multiple "
        "of --checkpoint_every=", every, ", at least twice it): recovery replays from the checkpoint before"));
  }
  const int64_t manifest = o.kill_coordinator_before_manifest_of_checkpoint;
  if (manifest > 0) {
    if (every == 0 || !o.restore_from.empty() || manifest * every >= o.steps) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--kill_coordinator_before_manifest_of_checkpoint=", manifest, " needs --checkpoint_every > 0, no "
          "--restore_from, and checkpoint N (at step N x --checkpoint_every) before the last step (--steps=", o.steps,
          ")"));
    }
    if (o.kill_coordinator_at_step > 0) {
      return absl::InvalidArgumentError(
          "--kill_coordinator_before_manifest_of_checkpoint and --kill_coordinator_at_step: use one");
    }
  }
  if (!o.kill_host_in_live_move.empty()) {
    const bool source = o.kill_host_in_live_move == "source";
    if (!source && o.kill_host_in_live_move != "destination") {
      return absl::InvalidArgumentError(absl::StrCat("--kill_host_in_live_move=", o.kill_host_in_live_move,
                                                     ": source or destination"));
    }
    if (o.drain_host_at_step == 0 || every == 0 || (!source && o.hosts < 3)) {
      return absl::InvalidArgumentError(
          "--kill_host_in_live_move needs --drain_host_at_step (its moves), --checkpoint_every > 0 (the recovery) "
          "and, for destination, --hosts >= 3 (a host that survives both)");
    }
  }
  if ((o.stop_host_at_step > 0) != (o.stop_host_seconds > 0)) {
    return absl::InvalidArgumentError("--stop_host_at_step and --stop_host_seconds (> 0) go together");
  }
  if ((o.stop_coordinator_at_step > 0) != (o.stop_coordinator_seconds > 0)) {
    return absl::InvalidArgumentError("--stop_coordinator_at_step and --stop_coordinator_seconds (> 0) go together");
  }
  if (o.stop_host_at_step > 0 && every == 0) {
    return absl::InvalidArgumentError("--stop_host_at_step needs --checkpoint_every > 0 (recovery replays from one)");
  }
  const int last_host_pickers = (o.kill_host_at_step > 0) + (streaming > 0) + (o.stop_host_at_step > 0) +
                                (o.drain_host_at_step > 0) + (o.kill_host_at_apply_of_step > 0);
  if (last_host_pickers > 1) {
    return absl::InvalidArgumentError(
        "--kill_host_at_step, --kill_host_while_streaming_at_step, --kill_host_at_apply_of_step, "
        "--stop_host_at_step and --drain_host_at_step all pick the last host: use one");
  }
  return absl::OkStatus();
}

// The fault injection and elasticity flags: the coordinator, a survivor, a checkpoint to go through.
absl::Status CheckClusterChanges(const LauncherOptions& o) {
  const struct {
    const char* name;
    int64_t step;
    int needed;     // processes of that kind needed (a survivor must remain)
    int have;
    const char* kind;
  } kills[] = {{"kill_host_at_step", o.kill_host_at_step, 1 + o.kill_hosts, o.hosts, "--hosts"},
               {"kill_host_while_streaming_at_step", o.kill_host_while_streaming_at_step, 2, o.hosts, "--hosts"},
               {"kill_host_at_apply_of_step", o.kill_host_at_apply_of_step, 2, o.hosts, "--hosts"},
               {"stop_host_at_step", o.stop_host_at_step, 2, o.hosts, "--hosts"},
               {"stop_coordinator_at_step", o.stop_coordinator_at_step, 1, o.hosts, "--hosts"},
               {"kill_trainer_at_step", o.kill_trainer_at_step, 2, o.trainers, "--trainers"},
               {"kill_coordinator_at_step", o.kill_coordinator_at_step, 1, o.hosts, "--hosts"},
               {"add_host_at_step", o.add_host_at_step, 1, o.hosts, "--hosts"},
               {"drain_host_at_step", o.drain_host_at_step, 2, o.hosts, "--hosts"}};
  for (const auto& k : kills) {
    if (k.step == 0) continue;
    if (!o.coordinator || o.hosts == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", k.name, " needs the coordinator (--hosts >= 1, --coordinator=true)"));
    }
    if (k.have < k.needed) {
      return absl::InvalidArgumentError(absl::StrCat("--", k.name, " needs ", k.kind, " >= ", k.needed));
    }
    if (k.step >= o.steps) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", k.name, "=", k.step, " is not before the last step (--steps=", o.steps, ")"));
    }
  }
  if (o.kill_trainer_index >= o.trainers) {
    return absl::InvalidArgumentError(absl::StrCat("--kill_trainer_index=", o.kill_trainer_index,
                                                   " names no trainer (--trainers=", o.trainers, ")"));
  }
  if ((o.kill_host_at_step > 0 || o.kill_trainer_at_step > 0) && o.checkpoint_every == 0) {
    return absl::InvalidArgumentError("--kill_host_at_step and --kill_trainer_at_step need --checkpoint_every > 0 "
                                      "(recovery replays from the latest checkpoint)");
  }
  for (const auto& [name, step] : {std::pair<const char*, int64_t>{"add_host_at_step", o.add_host_at_step},
                                   std::pair<const char*, int64_t>{"drain_host_at_step", o.drain_host_at_step}}) {
    if (step == 0) continue;
    if (o.checkpoint_every == 0 || step < o.checkpoint_every) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", name, "=", step, " needs --checkpoint_every in [1, ", step,
          "] (actors move through the latest checkpoint: one must exist by then)"));
    }
  }
  if (o.drain_host_at_step > 0 && o.kill_host_at_step > 0) {
    return absl::InvalidArgumentError("--drain_host_at_step and --kill_host_at_step both pick the last host: use one");
  }
  if (absl::Status s = CheckExactFaults(o); !s.ok()) return s;
  if (o.add_host_at_step > 0 && o.hosts >= kMaxHosts) {
    return absl::InvalidArgumentError(absl::StrCat("--add_host_at_step needs --hosts < ", kMaxHosts));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckLauncherOptions(const LauncherOptions& o) {
  if (o.data.empty()) return absl::InvalidArgumentError("--data is required");
  if (o.steps == 0) return absl::InvalidArgumentError("--steps is required (> 0)");
  if (o.workdir.empty()) return absl::InvalidArgumentError("--workdir is required");
  if (absl::Status s = CheckRanges(o); !s.ok()) return s;
  if (o.hosts == 0 && o.trainers != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--trainers=", o.trainers, " needs --hosts >= 1 (--hosts=0 is one standalone process)"));
  }
  if (o.checkpoint_every > 0 && (!o.coordinator || o.hosts == 0)) {
    return absl::InvalidArgumentError("--checkpoint_every needs the coordinator (--hosts >= 1, --coordinator=true)");
  }
  if (!o.restore_from.empty() && (!o.coordinator || o.hosts == 0)) {
    return absl::InvalidArgumentError("--restore_from needs the coordinator (--hosts >= 1, --coordinator=true)");
  }
  if (o.restore_checkpoint > 0 && o.restore_from.empty()) {
    return absl::InvalidArgumentError("--restore_checkpoint needs --restore_from");
  }
  if (absl::Status s = CheckClusterChanges(o); !s.ok()) return s;
  // The model flags: names, ranges, consistency, as each child checks them.
  return cluster::CheckTrainerOptions(o.model, /*require_run_flags=*/true);
}

}  // namespace sy::local
