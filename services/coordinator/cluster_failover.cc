// The ClusterActor's failover (--redundancy 2 or more): a dead host whose actors all
// have a holder elsewhere costs no checkpoint restore. The table without it goes to
// the surviving hosts with dropOpenStep: each drops the open step's contributions
// (an apply under way finishes first) and answers the version it is at. When every
// survivor is at the same version R, the trainers roll back to R, which only redoes
// the step they were in (on the surviving holders, whose results are the same bit for
// bit), and the lost copies are made again by live replicates onto other hosts.
// Survivors at different versions (a host died in the middle of an apply), a host that
// does not answer, or a failover of a failover's table fall back to checkpoint
// recovery (Recover).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "proto/coordinator.capnp.h"
#include "services/coordinator/cluster_actor.h"

namespace sy::coordinator {

bool ClusterActor::CanFailOver(const std::vector<cluster::Move>& moves, bool moving) const {
  if (options_.redundancy < 2 || moving || live_moves_ || recovering_ || moves.empty()) return false;
  // RemoveHost names no destination for an actor that still has another holder.
  return std::all_of(moves.begin(), moves.end(), [](const cluster::Move& m) { return m.to.empty(); });
}

void ClusterActor::FailOver(const std::string& why) {
  AbandonCheckpoint(absl::StrCat("failover: ", why));
  HoldTrainersUntilRollback();  // a new restore generation: answers to older orders decide nothing
  recovering_ = true;
  phase_ = "failing over";
  failover_ = FailoverInFlight{why, {}};
  SaveTable();
  std::weak_ptr<ClusterActor> self = std::static_pointer_cast<ClusterActor>(shared_from_this());
  for (const NodeInfo& host : membership_.Nodes(NodeRole::kHost)) {
    if (!host.alive) continue;
    // Hosts that hold actors drop their open step; others (waiting to join) only learn the table.
    const bool holds = !table_.ActorsOn(host.id).empty();
    if (holds) failover_->versions[host.id] = std::nullopt;
    const TablePush kind = holds ? TablePush::kFailover : TablePush::kChange;
    PushTable(host.id, kind, [self, id = host.id, holds, generation = restore_generation_](
                                 absl::StatusOr<transport::DecodedMessage> reply) {
      if (!holds) return;
      absl::StatusOr<uint64_t> version = absl::UnknownError("no reply");
      if (!reply.ok()) {
        version = reply.status();
      } else if (auto body = reply->Body<proto::coordinator::PlacementReply>(); !body.ok()) {
        version = body.status();
      } else {
        version = body->getVersion();
      }
      if (auto actor = self.lock()) actor->Tell(FailoverAnswer{id, generation, version});
    });
  }
  SY_LOG(WARNING) << "failover (" << why << "): every actor lives on another host; placement epoch "
                  << table_.epoch() << " drops the open step on " << failover_->versions.size() << " hosts";
  if (failover_->versions.empty()) Recover(absl::StrCat(why, ": no host left to fail over to"));
}

void ClusterActor::OnFailoverAnswer(const FailoverAnswer& answer) {
  if (!failover_ || answer.generation != restore_generation_) return;  // superseded by a later recovery
  const std::string why = failover_->why;
  if (!answer.version.ok()) {
    failover_.reset();
    recovering_ = false;
    return Recover(absl::StrCat(why, "; failover: host ", answer.host, " did not drop its step (",
                                answer.version.status().message(), ")"));
  }
  failover_->versions[answer.host] = *answer.version;
  uint64_t low = UINT64_MAX, high = 0;
  for (const auto& [host, version] : failover_->versions) {
    if (!version) return;  // still waiting
    low = std::min(low, *version);
    high = std::max(high, *version);
  }
  failover_.reset();
  recovering_ = false;
  if (low != high) {
    return Recover(absl::StrCat(why, "; failover: the survivors are at steps ", low, " to ", high,
                                " (a host died during an apply)"));
  }
  SY_LOG(INFO) << "failover done: every survivor is at step " << low << "; the trainers redo step " << low + 1;
  phase_ = "training";
  step_ = low;
  last_auto_rebalance_step_ = low;  // loads are measured afresh from here
  RollbackTrainers(low, /*checkpoint_id=*/0);
  failure_detected_unix_ms_ = 0;  // the trainers were told
  RebuildRedundancy();
}

void ClusterActor::RebuildRedundancy() {
  std::map<std::string, size_t> counts;
  for (const std::string& host : AliveHosts()) counts[host] = table_.ActorsOn(host).size();
  std::vector<cluster::Move> moves;
  for (const auto& [actor, holders] : table_.entries()) {
    for (size_t have = holders.size(); have < options_.redundancy; ++have) {
      std::string target;
      for (const auto& [host, count] : counts) {
        const bool holds = std::find(holders.begin(), holders.end(), host) != holders.end() ||
                           std::any_of(moves.begin(), moves.end(), [&](const cluster::Move& m) {
                             return m.actor == actor && m.to == host;
                           });
        if (!holds && (target.empty() || count < counts[target])) target = host;
      }
      if (target.empty()) break;  // as many holders as live hosts
      moves.push_back({actor, holders[0], target, /*replicate=*/true});
      ++counts[target];
    }
  }
  if (moves.empty()) {
    SY_LOG(WARNING) << "redundancy " << options_.redundancy << " cannot be rebuilt: too few live hosts";
    return;
  }
  if (absl::Status s = table_.Apply(moves); !s.ok()) {
    SY_LOG(ERROR) << "rebuilding redundancy: " << s;
    return;
  }
  StartMigrations(moves, "rebuilding redundancy");
}

}  // namespace sy::coordinator
