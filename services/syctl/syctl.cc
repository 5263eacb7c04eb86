// syctl commands: argument parsing, one admin call each, table or JSON output (see syctl.h).
#include "services/syctl/syctl.h"

#include <zmq.h>

#include <map>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/transport/faulty_transport.h"
#include "services/cluster/actor_key.h"
#include "services/syctl/admin_client.h"
#include "services/syctl/output.h"

namespace sy::syctl {
namespace {

using proto::admin::AdminReply;
using proto::admin::AdminRequest;

struct CommandHelp {
  const char* usage;
  const char* summary;
};

const std::map<std::string, CommandHelp>& Commands() {
  static const auto* commands = new std::map<std::string, CommandHelp>{
      {"status", {"status", "Cluster summary: phase, step, placement epoch, hosts, trainers, last checkpoint, load balance."}},
      {"hosts", {"hosts", "Every host and trainer: state (alive, draining, left when gone after finishing or a drain, failed), actors, load, step, device, endpoint."}},
      {"experts", {"experts", "Every expert: the hosts serving it, tokens in the last step, moving load."}},
      {"checkpoint", {"checkpoint now | list | restore K",
                      "now: take a checkpoint at the current step boundary (prints its id);\n"
                      "  list: committed checkpoints; restore K: restore checkpoint K and roll the trainers back."}},
      {"rebalance", {"rebalance [--dry_run] [--threshold=X]",
                     "Move or replicate hot experts until max/mean host load <= X (default: the coordinator's,\n"
                     "  1.25); --dry_run only shows the planned moves."}},
      {"drain", {"drain HOST", "Move every actor off HOST; then it may exit."}},
      {"remove", {"remove HOST", "Treat HOST as failed: re-place its actors and recover them from the latest checkpoint."}},
      {"faults", {"faults SPEC|clear [--node=ID]",
                  "Set transport fault injection (e.g. drop=0.1,dup=0.05,delay_ms=20,seed=7) on the\n"
                  "  coordinator, or on node ID; 'clear' removes it. For tests."}},
      {"keygen", {"keygen",
                  "Print a fresh CurveZMQ key pair (Z85) as 'public KEY' and 'secret KEY' lines; needs no\n"
                  "  coordinator. One pair makes the coordinator's server keys, one pair per admin its keys\n"
                  "  (see --admin_key_file)."}},
      {"help", {"help [command]", "This text, or one command's."}},
  };
  return *commands;
}

void PrintHelp(std::ostream& out) {
  out << "syctl: admin CLI of a Switchyard cluster\n\n"
         "usage: syctl --coordinator=ADDR [--admin_key_file=FILE] [--json] [--timeout_ms=N] <command> [args]\n\n"
         "  --coordinator=ADDR     coordinator endpoint, tcp://HOST:PORT (or HOST:PORT); with\n"
         "                         --admin_key_file, its --admin_listen endpoint\n"
         "  --admin_key_file=FILE  connect over CurveZMQ with the keys in FILE (needed when the\n"
         "                         coordinator runs with --admin_keys)\n"
         "  --json                 one JSON document instead of tables\n"
         "  --timeout_ms=N         give up after N ms without an answer (default 5000)\n\n"
         "commands:\n";
  for (const auto& [name, help] : Commands()) out << "  " << help.usage << "\n";
  out << "\nadmin key files (40-character Z85 keys from `syctl keygen`; '#' starts a comment line):\n"
         "  syctl --admin_key_file:        client_public KEY / client_secret KEY (one admin's pair) /\n"
         "                                 server_public KEY (the coordinator's), one per line\n"
         "  sy-coordinator --admin_keys:   server_secret KEY / server_public KEY (its pair) /\n"
         "                                 admin NAME KEY (an authorised client_public; one or more lines)\n"
         "  an admin key the coordinator does not list is refused: exit 1, PERMISSION_DENIED\n"
         "\nexit codes: 0 ok, 1 command failed, 2 bad usage, 3 coordinator unreachable\n"
         "`syctl <command> --help` describes one command.\n";
}

void PrintCommandHelp(const std::string& name, std::ostream& out) {
  const CommandHelp& help = Commands().at(name);
  out << "usage: syctl --coordinator=ADDR [--json] " << help.usage << "\n  " << help.summary << "\n";
}

struct Invocation {
  std::string coordinator;
  std::string admin_key_file;
  bool json = false;
  int64_t timeout_ms = 5000;
  bool help = false;
  std::vector<std::string> words;              // command and its positional arguments
  std::map<std::string, std::string> options;  // command options (--dry_run, --threshold, --node)
};

// Parses global options anywhere; everything else starting with "--" is a command option.
absl::StatusOr<Invocation> Parse(const std::vector<std::string>& args) {
  Invocation inv;
  for (const std::string& arg : args) {
    if (!absl::StartsWith(arg, "--")) {
      inv.words.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const std::optional<std::string> value =
        eq == std::string::npos ? std::nullopt : std::optional<std::string>(arg.substr(eq + 1));
    if (name == "coordinator") {
      if (!value) return absl::InvalidArgumentError("--coordinator needs a value: --coordinator=tcp://HOST:PORT");
      inv.coordinator = *value;
    } else if (name == "admin_key_file") {
      if (!value || value->empty()) return absl::InvalidArgumentError("--admin_key_file needs a value: --admin_key_file=FILE");
      inv.admin_key_file = *value;
    } else if (name == "json") {
      if (value) return absl::InvalidArgumentError("--json takes no value");
      inv.json = true;
    } else if (name == "timeout_ms") {
      if (!value || !absl::SimpleAtoi(*value, &inv.timeout_ms) || inv.timeout_ms <= 0) {
        return absl::InvalidArgumentError("--timeout_ms needs a positive number of milliseconds");
      }
    } else if (name == "help") {
      inv.help = true;
    } else {
      inv.options[name] = value.value_or("");
    }
  }
  return inv;
}

// Checks the command's arguments: `positional` words after the command, allowed options.
absl::Status Expect(const Invocation& inv, size_t positional, const std::vector<std::string>& allowed) {
  if (inv.words.size() - 1 != positional) {
    return absl::InvalidArgumentError(absl::StrCat("'", inv.words[0], "' takes ", positional, " argument(s), got ",
                                                   inv.words.size() - 1));
  }
  for (const auto& [name, value] : inv.options) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return absl::InvalidArgumentError(absl::StrCat("'", inv.words[0], "' has no option --", name));
    }
  }
  return absl::OkStatus();
}

std::string RoleName(proto::coordinator::Role role) {
  switch (role) {
    case proto::coordinator::Role::EXPERT_HOST:
      return "host";
    case proto::coordinator::Role::TRAINER:
      return "trainer";
    default:
      return "admin";
  }
}

std::string ExpertName(proto::expert::ExpertKey::Reader key) {
  return cluster::ActorKey::Expert(key.getLayer(), key.getExpert()).ToString();
}

std::string ActorName(proto::expert::ActorRef::Reader ref) {
  auto key = cluster::ActorKey::FromProto(ref);
  return key.ok() ? key->ToString() : "?";
}

std::string TimeText(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

// ---------------------------------------------------------------- printers

void PrintStatus(proto::admin::ClusterStatus::Reader s, bool json, std::ostream& out) {
  if (json) {
    JsonWriter j(out);
    j.BeginObject();
    j.Key("phase"); j.String(s.getPhase().cStr());
    j.Key("step"); j.Uint(s.getStep());
    j.Key("epoch"); j.Uint(s.getEpoch());
    j.Key("placement_ready"); j.Bool(s.getPlacementReady());
    j.Key("hosts_alive"); j.Uint(s.getHostsAlive());
    j.Key("hosts_total"); j.Uint(s.getHostsTotal());
    j.Key("trainers"); j.Uint(s.getTrainers());
    j.Key("latest_checkpoint"); j.Uint(s.getLatestCheckpoint());
    j.Key("checkpoint_in_progress"); j.Uint(s.getCheckpointInProgress());
    j.Key("max_over_mean_load"); j.Double(s.getMaxOverMeanLoad());
    j.Key("recoveries"); j.Uint(s.getRecoveries());
    j.EndObject();
    out << "\n";
    return;
  }
  Table t({"FIELD", "VALUE"});
  t.AddRow({"phase", s.getPhase().cStr()});
  t.AddRow({"step", absl::StrCat(s.getStep())});
  t.AddRow({"epoch", absl::StrCat(s.getEpoch())});
  t.AddRow({"placement", s.getPlacementReady() ? "ready" : "not ready"});
  t.AddRow({"hosts", absl::StrCat(s.getHostsAlive(), " alive / ", s.getHostsTotal(), " known")});
  t.AddRow({"trainers", absl::StrCat(s.getTrainers())});
  t.AddRow({"last checkpoint", s.getLatestCheckpoint() == 0 ? "none" : absl::StrCat(s.getLatestCheckpoint())});
  if (s.getCheckpointInProgress() != 0) t.AddRow({"checkpoint in progress", absl::StrCat(s.getCheckpointInProgress())});
  t.AddRow({"max/mean host load", s.getMaxOverMeanLoad() == 0 ? "-" : FormatFixed(s.getMaxOverMeanLoad(), 2)});
  t.AddRow({"recoveries", absl::StrCat(s.getRecoveries())});
  t.Print(out);
}

void PrintHosts(capnp::List<proto::admin::HostInfo>::Reader hosts, bool json, std::ostream& out) {
  if (json) {
    JsonWriter j(out);
    j.BeginArray();
    for (auto h : hosts) {
      j.BeginObject();
      j.Key("node_id"); j.String(h.getNodeId().cStr());
      j.Key("role"); j.String(RoleName(h.getRole()));
      j.Key("alive"); j.Bool(h.getAlive());
      j.Key("draining"); j.Bool(h.getDraining());
      j.Key("actors"); j.Uint(h.getActorCount());
      j.Key("load"); j.Double(h.getLoad());
      j.Key("step"); j.Uint(h.getStep());
      j.Key("device"); j.String(h.getDevice().cStr());
      j.Key("endpoint"); j.String(h.getEndpoint().cStr());
      j.Key("memory_bytes"); j.Uint(h.getMemoryBytes());
      j.Key("last_heartbeat_unix_ms"); j.Int(h.getLastHeartbeatUnixMs());
      j.EndObject();
    }
    j.EndArray();
    out << "\n";
    return;
  }
  Table t({"NODE", "ROLE", "STATE", "ACTORS", "LOAD", "STEP", "DEVICE", "ENDPOINT", "LAST HEARTBEAT (UTC)"});
  for (auto h : hosts) {
    // A node gone after saying it was done (a trainer that finished, a drained host) left; else it failed.
    const std::string state = !h.getAlive() ? (h.getDraining() ? "left" : "failed")
                                            : h.getDraining() ? "draining" : "alive";
    const bool host = h.getRole() == proto::coordinator::Role::EXPERT_HOST;
    t.AddRow({h.getNodeId().cStr(), RoleName(h.getRole()), state, host ? absl::StrCat(h.getActorCount()) : "-",
              host ? FormatFixed(h.getLoad(), 1) : "-", absl::StrCat(h.getStep()),
              h.getDevice().size() > 0 ? h.getDevice().cStr() : "-",
              h.getEndpoint().size() > 0 ? h.getEndpoint().cStr() : "-", TimeText(h.getLastHeartbeatUnixMs())});
  }
  t.Print(out);
}

void PrintExperts(capnp::List<proto::admin::ExpertInfo>::Reader experts, bool json, std::ostream& out) {
  if (json) {
    JsonWriter j(out);
    j.BeginArray();
    for (auto e : experts) {
      j.BeginObject();
      j.Key("expert"); j.String(ExpertName(e.getExpert()));
      j.Key("layer"); j.Uint(e.getExpert().getLayer());
      j.Key("index"); j.Uint(e.getExpert().getExpert());
      j.Key("hosts"); j.BeginArray();
      for (auto h : e.getHosts()) j.String(h.cStr());
      j.EndArray();
      j.Key("tokens_last_step"); j.Uint(e.getTokensLastStep());
      j.Key("dropped_last_step"); j.Uint(e.getDroppedLastStep());
      j.Key("load"); j.Double(e.getLoad());
      j.EndObject();
    }
    j.EndArray();
    out << "\n";
    return;
  }
  Table t({"EXPERT", "HOSTS", "TOKENS (LAST STEP)", "DROPPED", "LOAD (MOVING)"});
  for (auto e : experts) {
    std::vector<std::string> hosts;
    for (auto h : e.getHosts()) hosts.push_back(h.cStr());
    t.AddRow({ExpertName(e.getExpert()), hosts.empty() ? "-" : absl::StrJoin(hosts, ","),
              absl::StrCat(e.getTokensLastStep()), absl::StrCat(e.getDroppedLastStep()), FormatFixed(e.getLoad(), 1)});
  }
  t.Print(out);
}

void PrintCheckpoints(capnp::List<proto::checkpoint::Manifest>::Reader list, bool json, std::ostream& out) {
  if (json) {
    JsonWriter j(out);
    j.BeginArray();
    for (auto m : list) {
      uint64_t bytes = 0;
      for (auto a : m.getActors()) bytes += a.getTotalBytes();
      j.BeginObject();
      j.Key("id"); j.Uint(m.getCheckpointId());
      j.Key("step"); j.Uint(m.getStep());
      j.Key("epoch"); j.Uint(m.getEpoch());
      j.Key("actors"); j.Uint(m.getActors().size());
      j.Key("bytes"); j.Uint(bytes);
      j.Key("created_unix_ms"); j.Int(m.getCreatedUnixMs());
      j.Key("config_hash"); j.Uint(m.getConfigHash());
      j.EndObject();
    }
    j.EndArray();
    out << "\n";
    return;
  }
  Table t({"ID", "STEP", "EPOCH", "ACTORS", "BYTES", "CREATED (UTC)"});
  for (auto m : list) {
    uint64_t bytes = 0;
    for (auto a : m.getActors()) bytes += a.getTotalBytes();
    t.AddRow({absl::StrCat(m.getCheckpointId()), absl::StrCat(m.getStep()), absl::StrCat(m.getEpoch()),
              absl::StrCat(m.getActors().size()), absl::StrCat(bytes), TimeText(m.getCreatedUnixMs())});
  }
  t.Print(out);
}

void PrintRebalance(proto::admin::RebalanceResult::Reader r, bool dry_run, bool json, std::ostream& out) {
  if (json) {
    JsonWriter j(out);
    j.BeginObject();
    j.Key("dry_run"); j.Bool(dry_run);
    j.Key("applied"); j.Bool(r.getApplied());
    j.Key("epoch"); j.Uint(r.getEpoch());
    j.Key("max_over_mean_before"); j.Double(r.getMaxOverMeanBefore());
    j.Key("max_over_mean_after"); j.Double(r.getMaxOverMeanAfter());
    j.Key("moves"); j.BeginArray();
    for (auto m : r.getMoves()) {
      j.BeginObject();
      j.Key("actor"); j.String(ActorName(m.getActor()));
      j.Key("from"); j.String(m.getFromHost().cStr());
      j.Key("to"); j.String(m.getToHost().cStr());
      j.Key("replicate"); j.Bool(m.getReplicate());
      j.EndObject();
    }
    j.EndArray();
    j.EndObject();
    out << "\n";
    return;
  }
  if (r.getMoves().size() == 0) {
    out << "balanced: nothing to move (max/mean host load " << FormatFixed(r.getMaxOverMeanBefore(), 2) << ")\n";
    return;
  }
  Table t({"ACTOR", "ACTION", "FROM", "TO"});
  for (auto m : r.getMoves()) {
    t.AddRow({ActorName(m.getActor()), m.getReplicate() ? "replicate" : "migrate", m.getFromHost().cStr(),
              m.getToHost().cStr()});
  }
  t.Print(out);
  out << (dry_run ? "plan only (--dry_run): " : "applied: ") << r.getMoves().size()
      << " move(s), max/mean host load " << FormatFixed(r.getMaxOverMeanBefore(), 2) << " -> "
      << FormatFixed(r.getMaxOverMeanAfter(), 2) << ", epoch " << r.getEpoch() << "\n";
}

void PrintDone(const std::string& what, bool json, std::ostream& out) {
  if (json) {
    JsonWriter j(out);
    j.BeginObject();
    j.Key("ok"); j.Bool(true);
    j.Key("message"); j.String(what);
    j.EndObject();
    out << "\n";
  } else {
    out << what << "\n";
  }
}

int Usage(const std::string& message, std::ostream& err) {
  err << "syctl: " << message << "\n(run `syctl help` for usage)\n";
  return kExitUsage;
}

// `syctl keygen`: a fresh key pair from zmq_curve_keypair.
int Keygen(const Invocation& inv, std::ostream& out, std::ostream& err) {
  if (absl::Status usage = Expect(inv, 0, {}); !usage.ok()) return Usage(std::string(usage.message()), err);
  char public_key[41], secret_key[41];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    err << "syctl: keygen: zmq_curve_keypair failed: " << zmq_strerror(zmq_errno())
        << " (libzmq built without CURVE?)\n";
    return kExitFailed;
  }
  if (inv.json) {
    JsonWriter j(out);
    j.BeginObject();
    j.Key("public"); j.String(public_key);
    j.Key("secret"); j.String(secret_key);
    j.EndObject();
    out << "\n";
  } else {
    out << "public " << public_key << "\nsecret " << secret_key << "\n";
  }
  return kExitOk;
}

}  // namespace

int RunSyctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto parsed = Parse(args);
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()), err);
  Invocation inv = *std::move(parsed);
  if (inv.words.empty()) {
    if (inv.help) {
      PrintHelp(out);
      return kExitOk;
    }
    PrintHelp(err);
    return kExitUsage;
  }
  const std::string command = inv.words[0];
  if (Commands().count(command) == 0) return Usage(absl::StrCat("unknown command '", command, "'"), err);
  if (command == "help") {
    if (inv.words.size() == 1) {
      PrintHelp(out);
      return kExitOk;
    }
    if (Commands().count(inv.words[1]) == 0) return Usage(absl::StrCat("unknown command '", inv.words[1], "'"), err);
    PrintCommandHelp(inv.words[1], out);
    return kExitOk;
  }
  if (inv.help) {
    PrintCommandHelp(command, out);
    return kExitOk;
  }
  if (command == "keygen") return Keygen(inv, out, err);

  // Check the command line completely before talking to anyone.
  std::function<void(AdminRequest::Builder)> fill;
  std::function<void(AdminReply::Reader)> print;
  absl::Status usage;
  if (command == "status" || command == "hosts" || command == "experts") {
    usage = Expect(inv, 0, {});
    if (command == "status") {
      fill = [](AdminRequest::Builder r) { r.setStatus(); };
      print = [&](AdminReply::Reader r) { PrintStatus(r.getStatus(), inv.json, out); };
    } else if (command == "hosts") {
      fill = [](AdminRequest::Builder r) { r.setHosts(); };
      print = [&](AdminReply::Reader r) { PrintHosts(r.getHosts(), inv.json, out); };
    } else {
      fill = [](AdminRequest::Builder r) { r.setExperts(); };
      print = [&](AdminReply::Reader r) { PrintExperts(r.getExperts(), inv.json, out); };
    }
  } else if (command == "checkpoint") {
    const std::string sub = inv.words.size() > 1 ? inv.words[1] : "";
    if (sub == "now" || sub == "list") {
      usage = Expect(inv, 1, {});
    } else if (sub == "restore") {
      usage = Expect(inv, 2, {});
    } else {
      usage = absl::InvalidArgumentError("checkpoint needs now, list or restore K");
    }
    uint64_t id = 0;
    if (usage.ok() && sub == "restore" && (!absl::SimpleAtoi(inv.words[2], &id) || id == 0)) {
      usage = absl::InvalidArgumentError(absl::StrCat("restore needs a checkpoint id > 0, got '", inv.words[2], "'"));
    }
    if (sub == "now") {
      fill = [](AdminRequest::Builder r) { r.setCheckpointNow(); };
      print = [&](AdminReply::Reader r) {
        PrintDone(absl::StrCat("checkpoint ", r.getCheckpointId(), " started"), inv.json, out);
      };
    } else if (sub == "list") {
      fill = [](AdminRequest::Builder r) { r.setCheckpointList(); };
      print = [&](AdminReply::Reader r) { PrintCheckpoints(r.getCheckpoints(), inv.json, out); };
    } else {
      fill = [id](AdminRequest::Builder r) { r.setCheckpointRestore(id); };
      print = [&](AdminReply::Reader r) {
        PrintDone(absl::StrCat("checkpoint ", r.getCheckpointId(), " restored; trainers rolled back"), inv.json, out);
      };
    }
  } else if (command == "rebalance") {
    usage = Expect(inv, 0, {"dry_run", "threshold"});
    const bool dry_run = inv.options.count("dry_run") != 0;
    double threshold = 0;
    if (usage.ok() && dry_run && !inv.options["dry_run"].empty()) usage = absl::InvalidArgumentError("--dry_run takes no value");
    if (usage.ok() && inv.options.count("threshold") != 0 &&
        (!absl::SimpleAtod(inv.options["threshold"], &threshold) || threshold < 1)) {
      usage = absl::InvalidArgumentError("--threshold needs a number >= 1");
    }
    fill = [dry_run, threshold](AdminRequest::Builder r) {
      auto rebalance = r.initRebalance();
      rebalance.setDryRun(dry_run);
      rebalance.setThreshold(threshold);
    };
    print = [&, dry_run](AdminReply::Reader r) { PrintRebalance(r.getRebalance(), dry_run, inv.json, out); };
  } else if (command == "drain" || command == "remove") {
    usage = Expect(inv, 1, {});
    const std::string host = inv.words.size() > 1 ? inv.words[1] : "";
    if (command == "drain") {
      fill = [host](AdminRequest::Builder r) { r.setDrain(host); };
      print = [&, host](AdminReply::Reader) { PrintDone(absl::StrCat("draining ", host), inv.json, out); };
    } else {
      fill = [host](AdminRequest::Builder r) { r.setRemoveHost(host); };
      print = [&, host](AdminReply::Reader) { PrintDone(absl::StrCat("removed ", host), inv.json, out); };
    }
  } else if (command == "faults") {
    usage = Expect(inv, 1, {"node"});
    const std::string spec = inv.words.size() > 1 && inv.words[1] != "clear" ? inv.words[1] : "";
    if (usage.ok()) {
      if (auto ok = transport::ParseFaultSpec(spec); !ok.ok()) usage = ok.status();
    }
    const std::string node = inv.options.count("node") ? inv.options["node"] : "";
    fill = [spec, node](AdminRequest::Builder r) {
      auto faults = r.initFaults();
      faults.setNodeId(node);
      faults.setSpec(spec);
    };
    print = [&, spec, node](AdminReply::Reader) {
      PrintDone(absl::StrCat("faults on ", node.empty() ? "coordinator" : node, ": ", spec.empty() ? "none" : spec),
                inv.json, out);
    };
  }
  if (!usage.ok()) return Usage(std::string(usage.message()), err);

  transport::CurveKeys curve;
  if (!inv.admin_key_file.empty()) {
    auto keys = LoadClientKeys(inv.admin_key_file);
    if (!keys.ok()) return Usage(absl::StrCat("--admin_key_file: ", keys.status().message()), err);
    curve = *std::move(keys);
  }
  auto client = AdminClient::Connect(inv.coordinator, curve);
  if (!client.ok()) return Usage(std::string(client.status().message()), err);
  auto reply = (*client)->Call(fill, absl::Milliseconds(inv.timeout_ms));
  if (!reply.ok()) {
    if (reply.status().code() == absl::StatusCode::kDeadlineExceeded) {
      err << "syctl: coordinator " << inv.coordinator << " did not answer within " << inv.timeout_ms
          << " ms (is it running? is the address right?)\n";
      return kExitUnreachable;
    }
    err << "syctl: " << command << " failed: " << reply.status().message() << " ["
        << absl::StatusCodeToString(reply.status().code()) << "]\n";
    return kExitFailed;
  }
  print(reply->reply());
  return kExitOk;
}

}  // namespace sy::syctl
