// Placement table and its changes (see placement.h).
#include "services/cluster/placement_table.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/transport/rpc.h"

namespace sy::cluster {

std::vector<ActorKey> ModelShape::Actors() const {
  std::vector<ActorKey> actors;
  for (uint32_t s = 0; s < num_switch_layers; ++s) {
    for (uint32_t e = 0; e < num_experts; ++e) actors.push_back(ActorKey::Expert(s, e));
  }
  for (uint32_t s = 0; s < num_dense_shards; ++s) actors.push_back(ActorKey::Dense(s));
  return actors;
}

bool NaturalLess(absl::string_view a, absl::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ei = i, ej = j;
      while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei]))) ++ei;
      while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej]))) ++ej;
      absl::string_view na = a.substr(i, ei - i), nb = b.substr(j, ej - j);
      while (na.size() > 1 && na[0] == '0') na.remove_prefix(1);
      while (nb.size() > 1 && nb[0] == '0') nb.remove_prefix(1);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ei;
      j = ej;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  if ((a.size() - i) != (b.size() - j)) return (a.size() - i) < (b.size() - j);
  return a < b;  // equal up to leading zeros: fall back to plain order
}

size_t InitialHostIndex(const ActorKey& actor, const ModelShape& shape, size_t num_hosts) {
  if (num_hosts == 0) return 0;
  if (actor.dense) return actor.shard % num_hosts;
  const uint64_t global = static_cast<uint64_t>(actor.switch_layer) * shape.num_experts + actor.expert;
  return static_cast<size_t>(global % num_hosts);
}

absl::Status PlacementTable::Initialize(const std::vector<std::string>& hosts) {
  if (hosts.empty()) return absl::FailedPreconditionError("no hosts to place actors on");
  entries_.clear();
  const size_t holders = std::min(std::max<size_t>(redundancy_, 1), hosts.size());
  for (const ActorKey& a : shape_.Actors()) {
    const size_t first = InitialHostIndex(a, shape_, hosts.size());
    std::vector<std::string>& reps = entries_[a];
    for (size_t r = 0; r < holders; ++r) reps.push_back(hosts[(first + r) % hosts.size()]);
  }
  hosts_ = hosts;
  std::sort(hosts_.begin(), hosts_.end(), [](const std::string& x, const std::string& y) { return NaturalLess(x, y); });
  BumpEpoch();
  return absl::OkStatus();
}

absl::Status PlacementTable::Restore(uint64_t epoch, std::map<ActorKey, std::vector<std::string>> entries) {
  const std::vector<ActorKey> actors = shape_.Actors();
  if (entries.size() != actors.size()) {
    return absl::InvalidArgumentError(absl::StrCat("saved table has ", entries.size(), " actors, model has ", actors.size()));
  }
  std::vector<std::string> hosts;
  for (const ActorKey& a : actors) {
    auto it = entries.find(a);
    if (it == entries.end() || it->second.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("saved table lacks actor ", a.ToString()));
    }
    for (const std::string& h : it->second) {
      if (std::find(hosts.begin(), hosts.end(), h) == hosts.end()) hosts.push_back(h);
    }
  }
  std::sort(hosts.begin(), hosts.end(), [](const std::string& x, const std::string& y) { return NaturalLess(x, y); });
  entries_ = std::move(entries);
  hosts_ = std::move(hosts);
  epoch_ = epoch;
  live_moves_.clear();
  return absl::OkStatus();
}

std::map<std::string, size_t> PlacementTable::ActorCounts() const {
  std::map<std::string, size_t> counts;
  for (const std::string& h : hosts_) counts[h] = 0;
  for (const auto& [actor, replicas] : entries_) {
    for (const std::string& h : replicas) ++counts[h];
  }
  return counts;
}

std::vector<Move> PlacementTable::AddHost(const std::string& host) {
  if (std::find(hosts_.begin(), hosts_.end(), host) != hosts_.end()) return {};
  hosts_.push_back(host);
  std::sort(hosts_.begin(), hosts_.end(), [](const std::string& x, const std::string& y) { return NaturalLess(x, y); });
  std::vector<Move> moves;
  if (entries_.empty()) return moves;
  while (true) {
    auto counts = ActorCounts();
    // Most loaded host (first in host order on ties).
    std::string source;
    for (const std::string& h : hosts_) {
      if (source.empty() || counts[h] > counts[source]) source = h;
    }
    if (source == host || counts[source] <= counts[host] + 1) break;
    // Its last actor (in key order) that the new host does not already serve.
    const std::vector<ActorKey> on_source = ActorsOn(source);
    const ActorKey* pick = nullptr;
    for (auto it = on_source.rbegin(); it != on_source.rend(); ++it) {
      const auto& reps = entries_[*it];
      if (std::find(reps.begin(), reps.end(), host) == reps.end()) {
        pick = &*it;
        break;
      }
    }
    if (pick == nullptr) break;
    auto& reps = entries_[*pick];
    *std::find(reps.begin(), reps.end(), source) = host;
    moves.push_back({*pick, source, host, false});
  }
  if (!moves.empty()) BumpEpoch();
  return moves;
}

std::vector<Move> PlacementTable::RemoveHost(const std::string& host) {
  auto pos = std::find(hosts_.begin(), hosts_.end(), host);
  if (pos == hosts_.end()) return {};
  hosts_.erase(pos);
  std::vector<Move> moves;
  for (const ActorKey& a : ActorsOn(host)) {
    auto& reps = entries_[a];
    if (reps.size() > 1) {  // a replica goes away; the others take its micro-batches
      reps.erase(std::find(reps.begin(), reps.end(), host));
      moves.push_back({a, host, "", false});
      continue;
    }
    if (hosts_.empty()) continue;  // nowhere to go: stays listed on the dead host
    auto counts = ActorCounts();
    counts.erase(host);
    std::string target;
    for (const std::string& h : hosts_) {
      if (target.empty() || counts[h] < counts[target]) target = h;
    }
    reps[0] = target;
    moves.push_back({a, host, target, false});
  }
  if (!moves.empty()) BumpEpoch();
  return moves;
}

absl::Status PlacementTable::Apply(const std::vector<Move>& moves) {
  auto next = entries_;
  for (const Move& m : moves) {
    auto it = next.find(m.actor);
    if (it == next.end()) return absl::InvalidArgumentError(absl::StrCat("unknown actor ", m.actor.ToString()));
    auto& reps = it->second;
    if (std::find(hosts_.begin(), hosts_.end(), m.to) == hosts_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("move of ", m.actor.ToString(), " to unknown host '", m.to, "'"));
    }
    if (std::find(reps.begin(), reps.end(), m.to) != reps.end()) {
      return absl::InvalidArgumentError(absl::StrCat(m.actor.ToString(), " is already on ", m.to));
    }
    auto from = std::find(reps.begin(), reps.end(), m.from);
    if (from == reps.end()) {
      return absl::InvalidArgumentError(absl::StrCat(m.actor.ToString(), " is not on ", m.from));
    }
    if (m.replicate) {
      reps.push_back(m.to);
    } else {
      *from = m.to;
    }
  }
  if (moves.empty()) return absl::OkStatus();
  entries_ = std::move(next);
  BumpEpoch();
  return absl::OkStatus();
}

void PlacementTable::MarkLive(const std::vector<Move>& moves, uint64_t last_source_step) {
  live_moves_.clear();
  for (const Move& m : moves) {
    if (!m.from.empty() && !m.to.empty()) live_moves_.push_back({m, last_source_step});
  }
}

absl::Status PlacementTable::CheckEpoch(uint64_t request_epoch) const {
  if (request_epoch == epoch_) return absl::OkStatus();
  if (request_epoch > epoch_) {
    return absl::FailedPreconditionError(absl::StrCat("placement epoch ", request_epoch, " is ahead of the current ", epoch_));
  }
  absl::Status status = absl::AbortedError(absl::StrCat("stale placement epoch ", request_epoch, "; current is ", epoch_));
  status.SetPayload(transport::kCurrentEpochPayload, absl::Cord(absl::StrCat(epoch_)));
  return status;
}

uint64_t CurrentEpochFrom(const absl::Status& status) {
  auto payload = status.GetPayload(transport::kCurrentEpochPayload);
  uint64_t epoch = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &epoch)) return 0;
  return epoch;
}

std::vector<std::string> PlacementTable::HostsOf(const ActorKey& actor) const {
  auto it = entries_.find(actor);
  return it == entries_.end() ? std::vector<std::string>{} : it->second;
}

std::vector<ActorKey> PlacementTable::ActorsOn(const std::string& host) const {
  std::vector<ActorKey> actors;
  for (const auto& [actor, replicas] : entries_) {
    if (std::find(replicas.begin(), replicas.end(), host) != replicas.end()) actors.push_back(actor);
  }
  return actors;
}

}  // namespace sy::cluster
