// Membership and heartbeat failure detection (see membership.h).
#include "services/coordinator/membership.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/cluster/placement_table.h"

namespace sy::coordinator {

absl::StatusOr<RegisterOutcome> Membership::Register(NodeInfo node, actor::TimePoint now, int64_t now_unix_ms) {
  if (node.id.empty()) return absl::InvalidArgumentError("register: empty node id");
  RegisterOutcome outcome;
  auto it = nodes_.find(node.id);
  if (it == nodes_.end() || !it->second.alive) {
    outcome.is_new = true;
  } else {
    if (it->second.role != node.role) {
      return absl::InvalidArgumentError(absl::StrCat("node '", node.id, "' is registered with another role"));
    }
    // Incarnation 0: a placeholder from the saved placement, not a process we saw.
    outcome.restarted = it->second.incarnation != 0 && it->second.incarnation != node.incarnation;
    if (!outcome.restarted) {
      node.step = std::max(node.step, it->second.step);
      node.draining = it->second.draining;
    }
  }
  node.alive = true;
  node.last_seen = now;
  node.last_seen_unix_ms = now_unix_ms;
  nodes_[node.id] = std::move(node);
  return outcome;
}

absl::Status Membership::Heartbeat(const std::string& id, uint64_t incarnation, uint64_t step, uint64_t epoch,
                                   bool draining, actor::TimePoint now, int64_t now_unix_ms) {
  auto it = nodes_.find(id);
  if (it == nodes_.end() || !it->second.alive || it->second.incarnation != incarnation) {
    return absl::NotFoundError(absl::StrCat("node '", id, "' is not registered (incarnation ", incarnation, ")"));
  }
  NodeInfo& n = it->second;
  n.last_seen = now;
  n.last_seen_unix_ms = now_unix_ms;
  n.step = step;
  n.epoch = epoch;
  n.draining = n.draining || draining;
  return absl::OkStatus();
}

bool Membership::DeclaredFailed(const std::string& id, uint64_t incarnation) const {
  auto it = nodes_.find(id);
  return it != nodes_.end() && !it->second.alive && it->second.incarnation == incarnation;
}

std::vector<NodeInfo> Membership::Expire(actor::TimePoint now, actor::Duration* paused) {
  std::vector<NodeInfo> failed;
  const std::optional<actor::TimePoint> previous = std::exchange(last_expire_, now);
  if (paused != nullptr) *paused = actor::Duration::zero();
  if (previous && now - *previous > timeout_ / 2) {
    if (paused != nullptr) *paused = now - *previous;
    for (auto& [id, n] : nodes_) {
      if (n.alive) n.last_seen = std::max(n.last_seen, now);
    }
    return failed;
  }
  for (auto& [id, n] : nodes_) {
    if (n.alive && now - n.last_seen > timeout_) {
      n.alive = false;
      failed.push_back(n);
    }
  }
  return failed;
}

bool Membership::MarkFailed(const std::string& id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end() || !it->second.alive) return false;
  it->second.alive = false;
  return true;
}

void Membership::SetDraining(const std::string& id, bool draining) {
  auto it = nodes_.find(id);
  if (it != nodes_.end()) it->second.draining = draining;
}

std::vector<NodeInfo> Membership::ForgetDead(actor::TimePoint now, actor::Duration after,
                                             const std::function<bool(const NodeInfo&)>& keep) {
  std::vector<NodeInfo> forgotten;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    const NodeInfo& n = it->second;
    if (n.alive || now - n.last_seen <= after || keep(n)) {
      ++it;
      continue;
    }
    forgotten.push_back(n);
    it = nodes_.erase(it);
  }
  return forgotten;
}

const NodeInfo* Membership::Find(const std::string& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

std::vector<NodeInfo> Membership::Nodes(NodeRole role) const {
  std::vector<NodeInfo> out;
  for (const auto& [id, n] : nodes_) {
    if (n.role == role) out.push_back(n);
  }
  std::sort(out.begin(), out.end(), [](const NodeInfo& a, const NodeInfo& b) { return cluster::NaturalLess(a.id, b.id); });
  return out;
}

size_t Membership::AliveCount(NodeRole role) const {
  size_t count = 0;
  for (const auto& [id, n] : nodes_) count += (n.role == role && n.alive) ? 1 : 0;
  return count;
}

uint64_t Membership::MaxStep(NodeRole role) const {
  uint64_t step = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.role == role && n.alive) step = std::max(step, n.step);
  }
  return step;
}

}  // namespace sy::coordinator
