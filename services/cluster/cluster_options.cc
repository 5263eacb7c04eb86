// Cluster flags of sy-trainer and sy-expert-host (see cluster_options.h).
#include "services/cluster/cluster_options.h"

#include <cmath>
#include <functional>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sy::cluster {
namespace {

using Setter = std::function<absl::Status(const std::string&)>;

absl::Status BadValue(const std::string& name, const std::string& value, const std::string& want) {
  return absl::InvalidArgumentError(absl::StrCat("--", name, "=", value, ": expected ", want));
}

Setter IntSetter(const std::string& name, int* field, int min) {
  return [=](const std::string& v) {
    int x;
    if (!absl::SimpleAtoi(v, &x) || x < min) return BadValue(name, v, absl::StrCat("an integer >= ", min));
    *field = x;
    return absl::OkStatus();
  };
}

Setter SecondsSetter(const std::string& name, double* field) {
  return [=](const std::string& v) {
    double x;
    if (!absl::SimpleAtod(v, &x) || !std::isfinite(x) || x <= 0 || x > 86400) {
      return BadValue(name, v, "seconds in (0, 86400]");
    }
    *field = x;
    return absl::OkStatus();
  };
}

Setter TextSetter(std::string* field) {
  return [=](const std::string& v) {
    *field = v;
    return absl::OkStatus();
  };
}

// Applies the flags named in `ours` and returns the other arguments untouched.
absl::StatusOr<std::vector<std::string>> TakeFlags(const std::vector<std::string>& args,
                                                   const std::map<std::string, Setter>& ours) {
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!absl::StartsWith(arg, "--")) {
      rest.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    auto it = ours.find(name);
    if (it == ours.end()) {
      rest.push_back(arg);
      continue;
    }
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      value = args[++i];
    }
    if (absl::Status s = it->second(value); !s.ok()) return s;
  }
  return rest;
}

}  // namespace

absl::StatusOr<ClusterTrainerOptions> ParseClusterTrainerOptions(const std::vector<std::string>& args) {
  ClusterTrainerOptions o;
  std::string hosts;
  const std::map<std::string, Setter> ours = {
      {"hosts", TextSetter(&hosts)},
      {"trainer_index", IntSetter("trainer_index", &o.trainer_index, 0)},
      {"num_trainers", IntSetter("num_trainers", &o.num_trainers, 1)},
      {"rpc_timeout_s", SecondsSetter("rpc_timeout_s", &o.rpc_timeout_s)},
      {"faults", TextSetter(&o.faults)},
      {"coordinator", TextSetter(&o.coordinator)},
      {"resume_step", IntSetter("resume_step", &o.resume_step, 0)},
      {"recovery_timeout_s", SecondsSetter("recovery_timeout_s", &o.recovery_timeout_s)},
  };
  absl::StatusOr<std::vector<std::string>> rest = TakeFlags(args, ours);
  if (!rest.ok()) return rest.status();
  absl::StatusOr<TrainerOptions> base = ParseTrainerOptions(*rest);
  if (!base.ok()) return base.status();
  o.base = *std::move(base);
  for (absl::string_view ep : absl::StrSplit(hosts, ',', absl::SkipEmpty())) o.hosts.emplace_back(ep);
  if (o.base.help || o.base.standalone) return o;
  if (o.hosts.empty()) {
    return absl::InvalidArgumentError("--hosts=EP1,EP2,... is required (or --standalone for one process)");
  }
  if (o.resume_step >= o.base.steps) {
    return absl::InvalidArgumentError(
        absl::StrCat("--resume_step=", o.resume_step, " leaves nothing to train (--steps=", o.base.steps, ")"));
  }
  if (o.trainer_index >= o.num_trainers) {
    return absl::InvalidArgumentError(
        absl::StrCat("--trainer_index=", o.trainer_index, " must be below --num_trainers=", o.num_trainers));
  }
  return o;
}

absl::StatusOr<HostOptions> ParseHostOptions(const std::vector<std::string>& args) {
  HostOptions o;
  const std::map<std::string, Setter> ours = {
      {"listen", TextSetter(&o.listen)},
      {"advertise_host", TextSetter(&o.advertise_host)},
      {"ready_file", TextSetter(&o.ready_file)},
      {"host_index", IntSetter("host_index", &o.host_index, 0)},
      {"num_hosts", IntSetter("num_hosts", &o.num_hosts, 1)},
      {"step_timeout_s", SecondsSetter("step_timeout_s", &o.step_timeout_s)},
      {"metrics_port", IntSetter("metrics_port", &o.metrics_port, -1)},
      {"faults", TextSetter(&o.faults)},
      {"coordinator", TextSetter(&o.coordinator)},
      {"checkpoint_every", IntSetter("checkpoint_every", &o.checkpoint_every, 0)},
      {"fail_checkpoint_at_step", IntSetter("fail_checkpoint_at_step", &o.fail_checkpoint_at_step, 0)},
  };
  absl::StatusOr<std::vector<std::string>> rest = TakeFlags(args, ours);
  if (!rest.ok()) return rest.status();
  absl::StatusOr<TrainerOptions> model = ParseModelOptions(*rest);
  if (!model.ok()) return model.status();
  o.model = *std::move(model);
  o.help = o.model.help;
  if (o.help) return o;
  if (o.host_index >= o.num_hosts) {
    return absl::InvalidArgumentError(
        absl::StrCat("--host_index=", o.host_index, " must be below --num_hosts=", o.num_hosts));
  }
  if (o.metrics_port > 65535) return BadValue("metrics_port", std::to_string(o.metrics_port), "-1..65535");
  if (o.listen.empty()) return absl::InvalidArgumentError("--listen needs an endpoint, e.g. tcp://127.0.0.1:0");
  if (o.advertise_host.find_first_of(":/ ") != std::string::npos) {
    return BadValue("advertise_host", o.advertise_host, "a host name or IPv4 address (no scheme, no port)");
  }
  return o;
}

std::string ClusterTrainerHelpText() {
  return "\ndistributed training (without --standalone):\n"
         "  --hosts=EP1,EP2,...       expert host endpoints, host i first (required)\n"
         "  --trainer_index=t         this trainer (0 leads: metrics, validation, checksum) (default: 0)\n"
         "  --num_trainers=T          trainers; trainer t takes micro-batches m % T == t (default: 1)\n"
         "  --rpc_timeout_s=S         deadline of one request, retries included (default: 600)\n"
         "  --faults=SPEC             transport faults, e.g. drop=0.1,dup=0.05,seed=7 (default: none)\n"
         "  --resume_step=S           the hosts hold the state after step S (restored checkpoint): start at S+1\n"
         "  --coordinator=EP          register with sy-coordinator, take placement from it, report load\n"
         "                            (default: none, the static placement)\n"
         "  --recovery_timeout_s=S    with --coordinator: a step that fails with Unavailable, Aborted or\n"
         "                            DeadlineExceeded (a host lost) waits this long for the coordinator's\n"
         "                            rollback, then replays from the restored step; no rollback in time\n"
         "                            ends the trainer with an error (default: 120)\n";
}

std::string HostHelpText() {
  return "usage: sy-expert-host --listen=tcp://127.0.0.1:0 --ready_file=PATH --host_index=i --num_hosts=H\n"
         "         [--advertise_host=NAME] [--device=cpu|cuda:N] [--threads=N] [--step_timeout_s=60]\n"
         "         [--metrics_port=-1]\n"
         "         [--faults=SPEC] [--coordinator=EP] [--checkpoint_every=N] [--fail_checkpoint_at_step=S]\n"
         "         [--log_level=info]\n"
         "         [model/training flags of sy-trainer]\n"
         "Serves the experts and dense parameter shards this host owns under the static placement;\n"
         "writes the bound endpoint to --ready_file; runs until SIGTERM/SIGINT. Others reach it at\n"
         "tcp://NAME:PORT, NAME = --advertise_host, or the --listen address (this machine's hostname\n"
         "when listening on all interfaces); that endpoint is registered with the coordinator.\n";
}

}  // namespace sy::cluster
