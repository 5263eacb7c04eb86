// Definitions of syctl's flags and the reading of its command line (see command_line.h).
#include "services/syctl/command_line.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "common/flags/flags.h"
#include "common/flags/option_flags.h"
#include "services/syctl/syctl.h"

namespace {
// The flags defined below with SY_OPTION_FLAG, each the copy of one Invocation field.
struct InvocationFlagsName;
constexpr auto InvocationFlags = &sy::flags::OptionFlags<sy::syctl::Invocation, InvocationFlagsName>;
}  // namespace

SY_OPTION_FLAG(
    InvocationFlags, std::string, coordinator,
    "coordinator endpoint, tcp://HOST:PORT (or HOST:PORT); with --admin_key_file, its --admin_listen endpoint");
SY_OPTION_FLAG(InvocationFlags, std::string, admin_key_file,
               "connect over CurveZMQ with the keys in FILE (needed when the coordinator runs with --admin_keys)");
ABSL_FLAG(std::string, keys, "",
          "connect over CurveZMQ as an operator of the cluster key directory DIR (`syctl keygen --cluster=DIR`)");
SY_OPTION_FLAG(InvocationFlags, std::string, as, "with --keys: our operator name in the key directory");
ABSL_FLAG(std::string, cluster, "", "keygen: write (or with --add, grow) the cluster key directory DIR");
ABSL_FLAG(int32_t, hosts, 0, "keygen --cluster: expert hosts host-0..N-1");
ABSL_FLAG(int32_t, trainers, 0, "keygen --cluster: trainers trainer-0..M-1");
ABSL_FLAG(int32_t, operators, 0, "keygen --cluster: operators operator-0..K-1");
ABSL_FLAG(bool, add, false, "keygen --cluster=DIR --add ROLE NAME: add one node to DIR");
SY_OPTION_FLAG(InvocationFlags, bool, json, "one JSON document instead of tables");
SY_OPTION_FLAG(InvocationFlags, int64_t, timeout_ms, "give up after N ms without an answer");
ABSL_FLAG(bool, dry_run, false, "rebalance: only show the planned moves");
ABSL_FLAG(std::string, threshold, "",
          "rebalance: max/mean host load to reach, a number >= 1 (empty: the coordinator's)");
ABSL_FLAG(int32_t, iterations, 0, "top: stop after N refreshes (0: until q or Ctrl-C)");
ABSL_FLAG(std::string, node, "", "faults: the node to set them on (empty: the coordinator)");

namespace sy::syctl {

int RunSyctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::vector<std::string>> words = flags::ParseArgs(args, flags::Spelling::kStrict);
  if (!words.ok()) return Usage(std::string(words.status().message()), err);
  Invocation inv;
  InvocationFlags().ReadInto(&inv);
  inv.keys_dir = absl::GetFlag(FLAGS_keys);
  if (inv.timeout_ms <= 0) return Usage("--timeout_ms needs a positive number of milliseconds", err);
  inv.help = flags::HelpRequested(args) != flags::Help::kNone;
  inv.words = *std::move(words);
  // The command options given (a switch when on, a value when not empty).
  if (absl::GetFlag(FLAGS_dry_run)) inv.options["dry_run"] = "";
  if (const std::string threshold = absl::GetFlag(FLAGS_threshold); !threshold.empty()) {
    inv.options["threshold"] = threshold;
  }
  if (const std::string node = absl::GetFlag(FLAGS_node); !node.empty()) inv.options["node"] = node;
  if (const std::string dir = absl::GetFlag(FLAGS_cluster); !dir.empty()) inv.options["cluster"] = dir;
  if (absl::GetFlag(FLAGS_add)) inv.options["add"] = "";
  for (const auto& [name, value] : {std::pair<const char*, int32_t>{"hosts", absl::GetFlag(FLAGS_hosts)},
                                    {"trainers", absl::GetFlag(FLAGS_trainers)},
                                    {"operators", absl::GetFlag(FLAGS_operators)},
                                    {"iterations", absl::GetFlag(FLAGS_iterations)}}) {
    if (value != 0) inv.options[name] = std::to_string(value);
  }
  return RunCommand(inv, out, err);
}

}  // namespace sy::syctl
