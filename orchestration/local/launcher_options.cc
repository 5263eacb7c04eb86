// Parsing of sy-local's flags (see launcher_options.h).
#include "orchestration/local/launcher_options.h"

#include <cmath>
#include <functional>
#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "services/cluster/options.h"

namespace sy::local {
namespace {

constexpr int kMaxHosts = 64;
constexpr int kMaxTrainers = 64;

using Setter = std::function<absl::Status(LauncherOptions&, const std::string&)>;

absl::Status BadValue(const std::string& name, const std::string& value, const std::string& want) {
  return absl::InvalidArgumentError(absl::StrCat("--", name, "=", value, ": expected ", want));
}

Setter IntIn(int LauncherOptions::*field, const char* name, int min, int max) {
  return [=](LauncherOptions& o, const std::string& v) {
    int x;
    if (!absl::SimpleAtoi(v, &x) || x < min || x > max) {
      return BadValue(name, v, absl::StrFormat("an integer in [%d, %d]", min, max));
    }
    o.*field = x;
    return absl::OkStatus();
  };
}

Setter Seconds(double LauncherOptions::*field, const char* name) {
  return [=](LauncherOptions& o, const std::string& v) {
    double x;
    if (!absl::SimpleAtod(v, &x) || !std::isfinite(x) || x < 0 || x > 1e7) {
      return BadValue(name, v, "a number of seconds >= 0");
    }
    o.*field = x;
    return absl::OkStatus();
  };
}

Setter Step(int64_t LauncherOptions::*field, const char* name) {
  return [=](LauncherOptions& o, const std::string& v) {
    int64_t x;
    if (!absl::SimpleAtoi(v, &x) || x < 0) return BadValue(name, v, "an integer >= 0");
    o.*field = x;
    return absl::OkStatus();
  };
}

Setter Text(std::string LauncherOptions::*field, const char* name) {
  return [=](LauncherOptions& o, const std::string& v) {
    if (v.empty()) return BadValue(name, v, "a non-empty value");
    o.*field = v;
    return absl::OkStatus();
  };
}

Setter Words(std::vector<std::string> LauncherOptions::*field) {
  return [=](LauncherOptions& o, const std::string& v) {
    o.*field = absl::StrSplit(v, ' ', absl::SkipEmpty());
    return absl::OkStatus();
  };
}

struct OwnFlag {
  const char* help;
  Setter set;
};

// sy-local's own flags, by name (ordered for --help).
const std::map<std::string, OwnFlag>& OwnFlags() {
  using O = LauncherOptions;
  static const auto* flags = new std::map<std::string, OwnFlag>{
      {"hosts", {"expert hosts (0: one standalone process with every expert in-process)", IntIn(&O::hosts, "hosts", 0, kMaxHosts)}},
      {"trainers", {"trainer processes (1 when --hosts=0)", IntIn(&O::trainers, "trainers", 1, kMaxTrainers)}},
      {"steps", {"global training steps (required)",
                 [](O& o, const std::string& v) {
                   if (!absl::SimpleAtoi(v, &o.steps) || o.steps < 1) return BadValue("steps", v, "an integer >= 1");
                   return absl::OkStatus();
                 }}},
      {"data", {"corpus file (required)", Text(&O::data, "data")}},
      {"workdir", {"directory for logs, ready files, metrics.jsonl and summary.json (required)", Text(&O::workdir, "workdir")}},
      {"device", {"device of every process: cpu or cuda:N",
                  [](O& o, const std::string& v) {
                    if (v != "cpu" && v != "cuda" && !absl::StartsWith(v, "cuda:")) {
                      return BadValue("device", v, "cpu or cuda:N");
                    }
                    o.device = v;
                    return absl::OkStatus();
                  }}},
      {"threads", {"compute threads per process (0: the machine's cores divided between the processes)",
                   IntIn(&O::threads, "threads", 0, 1024)}},
      {"log_level", {"log level of every process: debug, info, warning, error",
                     [](O& o, const std::string& v) {
                       if (v != "debug" && v != "info" && v != "warning" && v != "error") {
                         return BadValue("log_level", v, "debug, info, warning or error");
                       }
                       o.log_level = v;
                       return absl::OkStatus();
                     }}},
      {"bin_dir", {"directory holding sy-trainer and sy-expert-host (default: sy-local's own)", Text(&O::bin_dir, "bin_dir")}},
      {"ready_timeout_s", {"seconds to wait for every host's ready file (default 60)", Seconds(&O::ready_timeout_s, "ready_timeout_s")}},
      {"timeout_s", {"seconds for the whole run, then everything is stopped (0: no limit)", Seconds(&O::timeout_s, "timeout_s")}},
      {"grace_s", {"seconds between SIGTERM and SIGKILL when stopping a process (default 10)", Seconds(&O::grace_s, "grace_s")}},
      {"host_args", {"extra flags for every sy-expert-host, space separated (e.g. --faults=SPEC)", Words(&O::host_args)}},
      {"trainer_args", {"extra flags for every sy-trainer, space separated", Words(&O::trainer_args)}},
      {"coordinator", {"true: start sy-coordinator (database in WORKDIR/coordinator.db); hosts and trainers "
                       "register with it and take the placement from it (default); false: static placement",
                       [](O& o, const std::string& v) {
                         if (v != "true" && v != "false") return BadValue("coordinator", v, "true or false");
                         o.coordinator = v == "true";
                         return absl::OkStatus();
                       }}},
      {"checkpoint_every", {"with the coordinator: a consistent checkpoint every N steps into its database (0: none)",
                            Step(&O::checkpoint_every, "checkpoint_every")}},
      {"restore_from", {"resume from a checkpoint in this database (an earlier run's workdir or its coordinator.db)",
                        Text(&O::restore_from, "restore_from")}},
      {"restore_checkpoint", {"with --restore_from: the checkpoint id to resume from (default 0: the newest)",
                              Step(&O::restore_checkpoint, "restore_checkpoint")}},
      {"coordinator_args", {"extra flags for sy-coordinator, space separated", Words(&O::coordinator_args)}},
      {"kill_host_at_step", {"fault test: SIGKILL the last host once step K is done; the coordinator re-places its "
                             "actors and the run replays from the latest checkpoint (0: never)",
                             Step(&O::kill_host_at_step, "kill_host_at_step")}},
      {"kill_trainer_at_step", {"fault test: SIGKILL the last trainer once step K is done; the others replay its "
                                "micro-batches from the latest checkpoint (0: never)",
                                Step(&O::kill_trainer_at_step, "kill_trainer_at_step")}},
      {"kill_trainer_index", {"with --kill_trainer_at_step: the trainer to kill (0: the leader, which the next "
                              "in line replaces, metrics.jsonl and summary.json included; default -1: the last)",
                              IntIn(&O::kill_trainer_index, "kill_trainer_index", -1, kMaxTrainers - 1)}},
      {"kill_coordinator_at_step", {"fault test: SIGKILL the coordinator once step K is done and restart it on the "
                                    "same database and endpoint (0: never)",
                                    Step(&O::kill_coordinator_at_step, "kill_coordinator_at_step")}},
      {"add_host_at_step", {"elasticity: start one more expert host (index --hosts) once step K is done; the "
                            "coordinator moves actors to it through the latest checkpoint; the trainers are paused (SIGSTOP, at most "
                            "1.5 s) until it registered (0: never)",
                            Step(&O::add_host_at_step, "add_host_at_step")}},
      {"drain_host_at_step", {"elasticity: drain the last host once step K is done (as `syctl drain host-N`), "
                              "then stop it once it holds no actors; the trainers are paused during the admin call; the run finishes "
                              "on the rest (0: never)",
                              Step(&O::drain_host_at_step, "drain_host_at_step")}},
  };
  return *flags;
}

// Flags sy-local sets on the processes it starts: a user value would conflict.
bool SetByLauncher(const std::string& name) {
  for (const char* n : {"standalone", "trainer_index", "num_trainers", "host_index", "num_hosts", "listen",
                        "ready_file", "faults"}) {
    if (name == n) return true;
  }
  return false;
}

absl::Status CheckShape(const LauncherOptions& o) {
  if (o.data.empty()) return absl::InvalidArgumentError("--data is required");
  if (o.steps <= 0) return absl::InvalidArgumentError("--steps is required (> 0)");
  if (o.workdir.empty()) return absl::InvalidArgumentError("--workdir is required");
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
  const struct {
    const char* name;
    int64_t step;
    int needed;     // processes of that kind needed (a survivor must remain)
    int have;
    const char* kind;
  } kills[] = {{"kill_host_at_step", o.kill_host_at_step, 2, o.hosts, "--hosts"},
               {"kill_trainer_at_step", o.kill_trainer_at_step, 2, o.trainers, "--trainers"},
               {"kill_coordinator_at_step", o.kill_coordinator_at_step, 1, o.hosts, "--hosts"},
               {"add_host_at_step", o.add_host_at_step, 1, o.hosts, "--hosts"},
               {"drain_host_at_step", o.drain_host_at_step, 2, o.hosts, "--hosts"}};
  for (const auto& k : kills) {
    if (k.step == 0) continue;
    if (!o.coordinator || o.hosts == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--", k.name, " needs the coordinator (--hosts >= 1, --coordinator=true)"));
    }
    if (k.have < k.needed) return absl::InvalidArgumentError(absl::StrCat("--", k.name, " needs ", k.kind, " >= ", k.needed));
    if (k.step >= o.steps) {
      return absl::InvalidArgumentError(absl::StrCat("--", k.name, "=", k.step, " is not before the last step (--steps=", o.steps, ")"));
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
  if (o.add_host_at_step > 0 && o.hosts >= kMaxHosts) {
    return absl::InvalidArgumentError(absl::StrCat("--add_host_at_step needs --hosts < ", kMaxHosts));
  }
  // The trainer's parser checks the model flags (names, ranges, consistency).
  std::vector<std::string> trainer_args = o.model_flags;
  trainer_args.insert(trainer_args.end(), {"--standalone", "--data=" + o.data, absl::StrCat("--steps=", o.steps)});
  absl::StatusOr<cluster::TrainerOptions> parsed = cluster::ParseTrainerOptions(trainer_args);
  return parsed.status();
}

}  // namespace

absl::StatusOr<LauncherOptions> ParseLauncherOptions(const std::vector<std::string>& args) {
  LauncherOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "' (flags are --name=value)"));
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (name == "help") {
      o.help = true;
      return o;
    }
    if (SetByLauncher(name)) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " is set by sy-local itself"));
    }
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
    }
    auto own = OwnFlags().find(name);
    if (own != OwnFlags().end()) {
      if (absl::Status s = own->second.set(o, value); !s.ok()) return s;
    } else {
      o.model_flags.push_back(absl::StrCat("--", name, "=", value));
    }
  }
  if (absl::Status s = CheckShape(o); !s.ok()) return s;
  return o;
}

std::string LauncherHelpText() {
  std::string text =
      "usage: sy-local --hosts=H --trainers=T --steps=S --data=FILE --workdir=DIR [model/training flags]\n"
      "Starts H sy-expert-host and T sy-trainer processes on loopback (H=0: one sy-trainer --standalone),\n"
      "waits for the trainers, stops the hosts and prints a summary. Each process logs to DIR/<role>-<i>.log;\n"
      "DIR/metrics.jsonl and DIR/summary.json come from trainer 0.\n"
      "Exit codes: 0 success, 1 a process failed (named, with its log tail), 2 bad flags, 130 interrupted.\n\n"
      "sy-local flags:\n";
  for (const auto& [name, flag] : OwnFlags()) absl::StrAppendFormat(&text, "  --%-18s %s\n", name, flag.help);
  text += "\nEvery other flag is a model/training flag forwarded to each process; see `sy-trainer --help`.\n";
  return text;
}

}  // namespace sy::local
