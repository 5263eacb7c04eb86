// syctl's tables and JSON documents of admin replies (see reply_printers.h).
#include "services/syctl/reply_printers.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "services/cluster/actor_key.h"
#include "services/syctl/output.h"

namespace sy::syctl {
namespace {

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
  return cluster::ActorKey::Expert(key.getSwitchLayer(), key.getExpert()).ToString();
}

std::string ActorName(proto::expert::ActorRef::Reader ref) {
  auto key = cluster::ActorKey::FromProto(ref);
  return key.ok() ? key->ToString() : "?";
}

std::string TimeText(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

}  // namespace

void PrintStatus(proto::admin::ClusterStatus::Reader s, bool json, std::ostream& out) {
  if (json) {
    PrintJsonObjectLine(out, [&](JsonWriter& j) {
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
      j.Key("insecure"); j.Bool(s.getInsecure());
    });
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
  t.AddRow({"security", s.getInsecure() ? "INSECURE (plain TCP, no keys)" : "CurveZMQ keys"});
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
      j.Key("switch_layer"); j.Uint(e.getExpert().getSwitchLayer());
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
    PrintJsonObjectLine(out, [&](JsonWriter& j) {
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
    });
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
    PrintJsonObjectLine(out, [&](JsonWriter& j) {
      j.Key("ok"); j.Bool(true);
      j.Key("message"); j.String(what);
    });
  } else {
    out << what << "\n";
  }
}

}  // namespace sy::syctl
