// Command lines of sy-local's processes (see process_commands.h).
#include "orchestration/local/process_commands.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/cluster/model_options.h"

namespace sy::local {
namespace {

// Flags every process shares: device, threads, log level, then the model flags as given.
void AppendCommon(const LauncherOptions& o, int threads, std::vector<std::string>* argv) {
  argv->push_back("--device=" + o.device);
  argv->push_back(absl::StrCat("--threads=", threads));
  argv->push_back("--log_level=" + o.log_level);
  argv->insert(argv->end(), o.model_flags.begin(), o.model_flags.end());
}

// --keys=WORKDIR/keys (KeysDir), or --insecure.
void AppendSecurity(const LauncherOptions& o, std::vector<std::string>* argv) {
  argv->push_back(o.insecure ? "--insecure" : "--keys=" + KeysDir(o));
}

void AppendRun(const LauncherOptions& o, std::vector<std::string>* argv) {
  argv->push_back("--data=" + o.data);
  argv->push_back(absl::StrCat("--steps=", o.steps));
  argv->push_back("--workdir=" + o.workdir);
}

}  // namespace

std::string KeysDir(const LauncherOptions& o) { return o.workdir + "/keys"; }

std::vector<std::string> StandaloneCommand(const LauncherOptions& o, const std::string& bin_dir, int threads) {
  std::vector<std::string> argv = {bin_dir + "/sy-trainer", "--standalone"};
  AppendRun(o, &argv);
  AppendCommon(o, threads, &argv);
  argv.insert(argv.end(), o.trainer_args.begin(), o.trainer_args.end());
  return argv;
}

std::vector<std::string> HostCommand(const LauncherOptions& o, const std::string& bin_dir, int host_index,
                                     int threads, const std::string& coordinator) {
  std::vector<std::string> argv = {bin_dir + "/sy-expert-host", "--listen=tcp://127.0.0.1:0",
                                   absl::StrCat("--ready_file=", o.workdir, "/host-", host_index, ".ready"),
                                   absl::StrCat("--host_index=", host_index),
                                   // A host joining beyond --hosts counts itself (its static actors are
                                   // dropped when the coordinator's table arrives).
                                   absl::StrCat("--num_hosts=", std::max(o.hosts, host_index + 1))};
  if (!coordinator.empty()) argv.push_back("--coordinator=" + coordinator);
  if (o.checkpoint_every > 0) argv.push_back(absl::StrCat("--checkpoint_every=", o.checkpoint_every));
  if (o.kill_host_while_streaming_at_step > 0 && host_index == o.hosts - 1) {
    argv.push_back(absl::StrCat("--kill_self_while_streaming_at_step=", o.kill_host_while_streaming_at_step));
  }
  if (o.kill_host_at_apply_of_step > 0 && host_index == o.hosts - 1) {
    argv.push_back(absl::StrCat("--kill_self_at_apply_of_step=", o.kill_host_at_apply_of_step));
  }
  if (o.kill_host_in_live_move == "source" && host_index == o.hosts - 1) {
    argv.push_back("--kill_self_in_live_move=source");
  } else if (o.kill_host_in_live_move == "destination" && host_index == 0) {
    argv.push_back("--kill_self_in_live_move=destination");
  }
  AppendSecurity(o, &argv);
  AppendCommon(o, threads, &argv);
  argv.insert(argv.end(), o.host_args.begin(), o.host_args.end());
  return argv;
}

std::vector<std::string> TrainerCommand(const LauncherOptions& o, const std::string& bin_dir, int trainer_index,
                                        const std::vector<std::string>& host_endpoints, int threads,
                                        const std::string& coordinator) {
  std::vector<std::string> argv = {bin_dir + "/sy-trainer", "--hosts=" + absl::StrJoin(host_endpoints, ","),
                                   absl::StrCat("--trainer_index=", trainer_index),
                                   absl::StrCat("--num_trainers=", o.trainers)};
  if (!coordinator.empty()) argv.push_back("--coordinator=" + coordinator);
  AppendSecurity(o, &argv);
  AppendRun(o, &argv);
  AppendCommon(o, threads, &argv);
  argv.insert(argv.end(), o.trainer_args.begin(), o.trainer_args.end());
  return argv;
}

absl::StatusOr<std::vector<std::string>> CoordinatorCommand(const LauncherOptions& o, const std::string& bin_dir) {
  // The coordinator learns the model's shape from the nodes that register; bad model
  // flags are still refused here, before any process starts.
  absl::StatusOr<gpu::ModelConfig> config = cluster::ModelConfigFromOptions(o.model);
  if (!config.ok()) return config.status();
  std::vector<std::string> argv = {bin_dir + "/sy-coordinator", "--listen=tcp://127.0.0.1:0",
                                   absl::StrCat("--ready_file=", o.workdir, "/coordinator.ready"),
                                   absl::StrCat("--db=", o.workdir, "/coordinator.db"),
                                   absl::StrCat("--expected_hosts=", o.hosts),
                                   absl::StrCat("--seed=", o.model.seed),
                                   absl::StrCat("--checkpoint_every=", o.checkpoint_every),
                                   absl::StrCat("--redundancy=", o.redundancy),
                                   "--log_level=" + o.log_level};
  AppendSecurity(o, &argv);
  argv.insert(argv.end(), o.coordinator_args.begin(), o.coordinator_args.end());
  return argv;
}

}  // namespace sy::local
