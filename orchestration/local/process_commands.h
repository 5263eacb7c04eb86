// The command lines sy-local starts its processes with (argv[0] = the binary's path in
// `bin_dir`): each gets the run and model flags of the launcher's options, its place in
// the cluster, and the extra flags given for its kind. Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "orchestration/local/launcher_options.h"

namespace sy::local {

// The cluster key directory sy-local writes and its processes use: WORKDIR/keys.
std::string KeysDir(const LauncherOptions& o);

std::vector<std::string> StandaloneCommand(const LauncherOptions& o, const std::string& bin_dir, int threads);
// `coordinator`: the coordinator's endpoint ("" = static placement, no coordinator).
// A host index >= --hosts (one joining the run) gets --num_hosts=host_index+1.
std::vector<std::string> HostCommand(const LauncherOptions& o, const std::string& bin_dir, int host_index,
                                     int threads, const std::string& coordinator = "");
std::vector<std::string> TrainerCommand(const LauncherOptions& o, const std::string& bin_dir, int trainer_index,
                                        const std::vector<std::string>& host_endpoints, int threads,
                                        const std::string& coordinator = "");
// sy-coordinator with its database and ready file under the workdir, the model's
// shape (Switch layers, experts, dense shards) and --expected_hosts = --hosts.
// InvalidArgument when the model flags do not make a model.
absl::StatusOr<std::vector<std::string>> CoordinatorCommand(const LauncherOptions& o, const std::string& bin_dir);

}  // namespace sy::local
