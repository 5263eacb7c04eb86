// Membership: the processes the coordinator knows (hosts and trainers), their
// heartbeats, and failure detection: a node whose last register/heartbeat is older
// than the timeout is declared failed by Expire(now), once. Time is passed in (the
// coordinator's executor clock), so tests drive it with a manual clock.
//
// A node that registers again with a new incarnation restarted (its state is gone;
// incarnation 0 marks a placeholder for a node not seen yet, e.g. after a restart);
// with the same incarnation it is a duplicate register (or a re-register after a
// coordinator restart) and keeps its state. A heartbeat from an unknown node, or from
// an old incarnation, is NotFound: the node must register again (DeclaredFailed tells
// a node that was declared failed: it is fenced, and registers again as a new node). A
// heartbeat's step replaces the one stored (a host's applied version goes back after a
// restore).
//
// A node dead and silent for longer than a bound is forgotten (ForgetDead), unless the
// caller holds on to it (a host the placement still lists), so departed nodes do not
// fill --max_nodes for good; a forgotten node is unknown, as if never seen.
//
// Not thread-safe: owned by the coordinator's state actor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/actor/executor.h"

namespace sy::coordinator {

enum class NodeRole { kHost, kTrainer };

struct NodeInfo {
  std::string id;
  NodeRole role = NodeRole::kHost;
  std::string endpoint;       // hosts: where they accept requests; trainers: ""
  std::string device;         // "cpu", "cuda:N"
  uint64_t memory_bytes = 0;  // capacity for actors
  uint64_t incarnation = 0;
  actor::TimePoint last_seen{};
  int64_t last_seen_unix_ms = 0;  // for display
  bool alive = true;
  bool draining = false;
  uint64_t step = 0;   // last completed step it reported
  uint64_t epoch = 0;  // placement epoch it acts on
};

struct RegisterOutcome {
  bool is_new = false;     // never seen (or seen failed) before
  bool restarted = false;  // known, but a new incarnation
};

class Membership {
 public:
  explicit Membership(actor::Duration timeout) : timeout_(timeout) {}

  // InvalidArgument for an empty id, or a role change of a live node.
  absl::StatusOr<RegisterOutcome> Register(NodeInfo node, actor::TimePoint now, int64_t now_unix_ms);
  absl::Status Heartbeat(const std::string& id, uint64_t incarnation, uint64_t step, uint64_t epoch,
                         bool draining, actor::TimePoint now, int64_t now_unix_ms);
  // `id` at `incarnation` was declared failed (and has not registered since).
  bool DeclaredFailed(const std::string& id, uint64_t incarnation) const;
  // Nodes alive whose last sign of life is older than the timeout: marked failed and
  // returned. Called periodically (more often than every half timeout). When more than
  // half the timeout passed since the previous call, the coordinator itself did not run
  // (its process was stopped, or starved of CPU) and the silence was its own: nobody is
  // declared failed, every live node's deadline starts again at `now`, and `*paused`
  // (when given) is set to the gap; it is zero otherwise.
  std::vector<NodeInfo> Expire(actor::TimePoint now, actor::Duration* paused = nullptr);
  // Marks a node failed now (e.g. its connection died, or an operator removed it).
  bool MarkFailed(const std::string& id);
  void SetDraining(const std::string& id, bool draining);
  // Forgets the nodes not alive whose last sign of life is older than `after` at `now`,
  // except those `keep` returns true for; returns the nodes forgotten.
  std::vector<NodeInfo> ForgetDead(actor::TimePoint now, actor::Duration after,
                                   const std::function<bool(const NodeInfo&)>& keep);

  const NodeInfo* Find(const std::string& id) const;
  // Nodes of `role`, in NaturalLess order of their ids.
  std::vector<NodeInfo> Nodes(NodeRole role) const;
  size_t AliveCount(NodeRole role) const;
  // Highest step reported by a live node of `role`.
  uint64_t MaxStep(NodeRole role) const;
  actor::Duration timeout() const { return timeout_; }

 private:
  actor::Duration timeout_;
  std::map<std::string, NodeInfo> nodes_;
  std::optional<actor::TimePoint> last_expire_;
};

}  // namespace sy::coordinator
