// Definitions of syctl's flags and the reading of its command line (see command_line.h).
#include "services/syctl/command_line.h"

#include <cstdint>

#include "absl/flags/flag.h"
#include "common/flags/flags.h"
#include "services/syctl/syctl.h"

ABSL_FLAG(std::string, coordinator, "",
          "coordinator endpoint, tcp://HOST:PORT (or HOST:PORT); with --admin_key_file, its --admin_listen endpoint");
ABSL_FLAG(std::string, admin_key_file, "",
          "connect over CurveZMQ with the keys in FILE (needed when the coordinator runs with --admin_keys)");
ABSL_FLAG(bool, json, false, "one JSON document instead of tables");
ABSL_FLAG(int64_t, timeout_ms, 5000, "give up after N ms without an answer");
ABSL_FLAG(bool, dry_run, false, "rebalance: only show the planned moves");
ABSL_FLAG(std::string, threshold, "",
          "rebalance: max/mean host load to reach, a number >= 1 (empty: the coordinator's)");
ABSL_FLAG(std::string, node, "", "faults: the node to set them on (empty: the coordinator)");

namespace sy::syctl {

int RunSyctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::vector<std::string>> words = flags::ParseArgs(args, flags::Spelling::kStrict);
  if (!words.ok()) return Usage(std::string(words.status().message()), err);
  Invocation inv;
  inv.coordinator = absl::GetFlag(FLAGS_coordinator);
  inv.admin_key_file = absl::GetFlag(FLAGS_admin_key_file);
  inv.json = absl::GetFlag(FLAGS_json);
  inv.timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  if (inv.timeout_ms <= 0) return Usage("--timeout_ms needs a positive number of milliseconds", err);
  inv.help = flags::HelpRequested(args) != flags::Help::kNone;
  inv.words = *std::move(words);
  // The command options given (a switch when on, a value when not empty).
  if (absl::GetFlag(FLAGS_dry_run)) inv.options["dry_run"] = "";
  if (const std::string threshold = absl::GetFlag(FLAGS_threshold); !threshold.empty()) {
    inv.options["threshold"] = threshold;
  }
  if (const std::string node = absl::GetFlag(FLAGS_node); !node.empty()) inv.options["node"] = node;
  return RunCommand(inv, out, err);
}

}  // namespace sy::syctl
