// One admin request per syctl command, with its argument checks and reply printer (see admin_commands.h).
#include "services/syctl/admin_commands.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/transport/faulty_transport.h"
#include "services/syctl/reply_printers.h"

namespace sy::syctl {
namespace {

using proto::admin::AdminReply;
using proto::admin::AdminRequest;

// The option's value, "" when not given.
std::string Option(const Invocation& inv, const std::string& name) {
  const auto it = inv.options.find(name);
  return it == inv.options.end() ? "" : it->second;
}

// status, hosts, experts: a listing.
absl::StatusOr<AdminCall> ListCall(const Invocation& inv, std::ostream& out) {
  if (absl::Status usage = ExpectArguments(inv, 0, {}); !usage.ok()) return usage;
  const std::string& command = inv.words[0];
  if (command == "status") {
    return AdminCall{[](AdminRequest::Builder r) { r.setStatus(); },
                     [&](AdminReply::Reader r) { PrintStatus(r.getStatus(), inv.json, out); }};
  }
  if (command == "hosts") {
    return AdminCall{[](AdminRequest::Builder r) { r.setHosts(); },
                     [&](AdminReply::Reader r) { PrintHosts(r.getHosts(), inv.json, out); }};
  }
  return AdminCall{[](AdminRequest::Builder r) { r.setExperts(); },
                   [&](AdminReply::Reader r) { PrintExperts(r.getExperts(), inv.json, out); }};
}

// checkpoint now | list | restore K.
absl::StatusOr<AdminCall> CheckpointCall(const Invocation& inv, std::ostream& out) {
  const std::string sub = inv.words.size() > 1 ? inv.words[1] : "";
  if (sub == "now" || sub == "list") {
    if (absl::Status usage = ExpectArguments(inv, 1, {}); !usage.ok()) return usage;
  } else if (sub == "restore") {
    if (absl::Status usage = ExpectArguments(inv, 2, {}); !usage.ok()) return usage;
  } else {
    return absl::InvalidArgumentError("checkpoint needs now, list or restore K");
  }
  if (sub == "now") {
    return AdminCall{[](AdminRequest::Builder r) { r.setCheckpointNow(); },
                     [&](AdminReply::Reader r) {
                       PrintDone(absl::StrCat("checkpoint ", r.getCheckpointId(), " started"), inv.json, out);
                     }};
  }
  if (sub == "list") {
    return AdminCall{[](AdminRequest::Builder r) { r.setCheckpointList(); },
                     [&](AdminReply::Reader r) { PrintCheckpoints(r.getCheckpoints(), inv.json, out); }};
  }
  uint64_t id = 0;
  if (!absl::SimpleAtoi(inv.words[2], &id) || id == 0) {
    return absl::InvalidArgumentError(absl::StrCat("restore needs a checkpoint id > 0, got '", inv.words[2], "'"));
  }
  return AdminCall{[id](AdminRequest::Builder r) { r.setCheckpointRestore(id); },
                   [&](AdminReply::Reader r) {
                     PrintDone(absl::StrCat("checkpoint ", r.getCheckpointId(), " restored; trainers rolled back"),
                               inv.json, out);
                   }};
}

// rebalance [--dry_run] [--threshold=X].
absl::StatusOr<AdminCall> RebalanceCall(const Invocation& inv, std::ostream& out) {
  if (absl::Status usage = ExpectArguments(inv, 0, {"dry_run", "threshold"}); !usage.ok()) return usage;
  const bool dry_run = inv.options.count("dry_run") != 0;
  double threshold = 0;
  if (inv.options.count("threshold") != 0 &&
      (!absl::SimpleAtod(Option(inv, "threshold"), &threshold) || threshold < 1)) {
    return absl::InvalidArgumentError("--threshold needs a number >= 1");
  }
  return AdminCall{[dry_run, threshold](AdminRequest::Builder r) {
                     auto rebalance = r.initRebalance();
                     rebalance.setDryRun(dry_run);
                     rebalance.setThreshold(threshold);
                   },
                   [&, dry_run](AdminReply::Reader r) { PrintRebalance(r.getRebalance(), dry_run, inv.json, out); }};
}

// drain HOST, remove HOST.
absl::StatusOr<AdminCall> HostCall(const Invocation& inv, std::ostream& out) {
  if (absl::Status usage = ExpectArguments(inv, 1, {}); !usage.ok()) return usage;
  const std::string host = inv.words[1];
  if (inv.words[0] == "drain") {
    return AdminCall{[host](AdminRequest::Builder r) { r.setDrain(host); },
                     [&, host](AdminReply::Reader) { PrintDone(absl::StrCat("draining ", host), inv.json, out); }};
  }
  return AdminCall{[host](AdminRequest::Builder r) { r.setRemoveHost(host); },
                   [&, host](AdminReply::Reader) { PrintDone(absl::StrCat("removed ", host), inv.json, out); }};
}

// faults SPEC|clear [--node=ID].
absl::StatusOr<AdminCall> FaultsCall(const Invocation& inv, std::ostream& out) {
  if (absl::Status usage = ExpectArguments(inv, 1, {"node"}); !usage.ok()) return usage;
  const std::string spec = inv.words[1] != "clear" ? inv.words[1] : "";
  if (auto parsed = transport::ParseFaultSpec(spec); !parsed.ok()) return parsed.status();
  const std::string node = Option(inv, "node");
  return AdminCall{[spec, node](AdminRequest::Builder r) {
                     auto faults = r.initFaults();
                     faults.setNodeId(node);
                     faults.setSpec(spec);
                   },
                   [&, spec, node](AdminReply::Reader) {
                     PrintDone(absl::StrCat("faults on ", node.empty() ? "coordinator" : node, ": ",
                                            spec.empty() ? "none" : spec),
                               inv.json, out);
                   }};
}

using Planner = absl::StatusOr<AdminCall> (*)(const Invocation&, std::ostream&);

const std::map<std::string, Planner>& Planners() {
  static const auto* planners = new std::map<std::string, Planner>{
      {"status", ListCall},         {"hosts", ListCall},  {"experts", ListCall}, {"checkpoint", CheckpointCall},
      {"rebalance", RebalanceCall}, {"drain", HostCall},  {"remove", HostCall},  {"faults", FaultsCall},
  };
  return *planners;
}

}  // namespace

absl::StatusOr<AdminCall> PlanAdminCall(const Invocation& inv, std::ostream& out) {
  const auto it = Planners().find(inv.words.at(0));
  if (it == Planners().end()) {
    return absl::InvalidArgumentError(absl::StrCat("'", inv.words[0], "' is not an admin command"));
  }
  return it->second(inv, out);
}

}  // namespace sy::syctl
