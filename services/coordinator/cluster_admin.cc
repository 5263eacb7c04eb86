// The ClusterActor's admin API: the dispatch, the snapshots the reports are rendered
// from (admin_replies.h), and the commands that act on the cluster: checkpoint now,
// restore, rebalance, drain, remove a host, transport faults (see cluster_actor.h).
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "proto/admin.capnp.h"
#include "services/cluster/envelope.h"
#include "services/coordinator/admin_replies.h"
#include "services/coordinator/cluster_actor.h"

namespace sy::coordinator {

void ClusterActor::OnAdmin(ClusterRequest& request) {
  auto body = request.message.Body<proto::admin::AdminRequest>();
  if (!body.ok()) return request.responder.Fail(body.status());
  transport::Responder& r = request.responder;
  switch (body->which()) {
    case proto::admin::AdminRequest::STATUS:
      return ReplyStatus(StatusNow(), r);
    case proto::admin::AdminRequest::HOSTS:
      return ReplyNodes(NodesNow(), table_.epoch(), r);
    case proto::admin::AdminRequest::EXPERTS:
      return ReplyExperts(ExpertsNow(), table_.epoch(), r);
    case proto::admin::AdminRequest::CHECKPOINT_NOW:
      return AdminCheckpointNow(r);
    case proto::admin::AdminRequest::CHECKPOINT_RESTORE:
      return AdminRestore(body->getCheckpointRestore(), r);
    case proto::admin::AdminRequest::REBALANCE:
      return AdminRebalance(body->getRebalance().getDryRun(), body->getRebalance().getThreshold(), r);
    case proto::admin::AdminRequest::DRAIN:
      return AdminDrain(body->getDrain().cStr(), r);
    case proto::admin::AdminRequest::REMOVE_HOST:
      return AdminRemoveHost(body->getRemoveHost().cStr(), r);
    case proto::admin::AdminRequest::FAULTS:
      return AdminFaults(body->getFaults().getNodeId().cStr(), body->getFaults().getSpec().cStr(), r);
    case proto::admin::AdminRequest::HOST_LOAD_SERIES:
      return ReplyHostLoadSeries(host_load_series_.steps(), table_.epoch(), r);
    case proto::admin::AdminRequest::CHECKPOINT_LIST:  // the service routes it to the CheckpointActor
      return r.Fail(absl::InternalError("checkpoint list is answered by the checkpoints, not the cluster"));
    default:
      return r.Fail(absl::InvalidArgumentError("unknown admin command"));
  }
}

StatusSnapshot ClusterActor::StatusNow() const {
  StatusSnapshot s;
  s.epoch = table_.epoch();
  s.step = step_;
  for (const NodeInfo& h : membership_.Nodes(NodeRole::kHost)) {
    ++s.hosts_total;
    s.hosts_alive += h.alive ? 1 : 0;
  }
  s.trainers = static_cast<uint32_t>(membership_.AliveCount(NodeRole::kTrainer));
  s.phase = storage_problem_.empty() ? phase_ : absl::StrCat("degraded: ", storage_problem_);
  s.placement_ready = table_.initialized();
  s.max_over_mean_load = table_.initialized() ? MaxOverMean(loads_.HostLoads(table_)) : 0.0;
  s.recoveries = recoveries_;
  s.migrations = migrations_;
  s.replications = replications_;
  s.checkpoints = checkpoint_;
  s.insecure = options_.security.insecure;
  return s;
}

std::vector<NodeSnapshot> ClusterActor::NodesNow() const {
  const std::map<std::string, double> host_loads = loads_.HostLoads(table_);
  std::vector<NodeSnapshot> nodes;
  for (NodeRole role : {NodeRole::kHost, NodeRole::kTrainer}) {
    for (NodeInfo& n : membership_.Nodes(role)) {
      NodeSnapshot node;
      if (role == NodeRole::kHost) {
        node.actor_count = static_cast<uint32_t>(table_.ActorsOn(n.id).size());
        auto load = host_loads.find(n.id);
        node.load = load == host_loads.end() ? 0.0 : load->second;
      }
      node.node = std::move(n);
      nodes.push_back(std::move(node));
    }
  }
  return nodes;
}

std::vector<ExpertSnapshot> ClusterActor::ExpertsNow() const {
  std::vector<ExpertSnapshot> experts;
  for (const cluster::ActorKey& a : table_.shape().Actors()) {
    if (a.dense) continue;
    ExpertSnapshot e;
    e.expert = a;
    e.hosts = table_.HostsOf(a);
    auto last = loads_.last_step().find(a);
    if (last != loads_.last_step().end()) e.last_step = last->second;
    e.load = loads_.ExpertLoad(a);
    experts.push_back(std::move(e));
  }
  return experts;
}

void ClusterActor::AdminCheckpointNow(transport::Responder& responder) {
  if (!table_.initialized()) {
    return responder.Fail(absl::FailedPreconditionError(absl::StrCat("no placement yet: ", phase_)));
  }
  if (recovering_) return responder.Fail(absl::UnavailableError("recovery in progress"));
  checkpoints_->Tell(TakeCheckpointNow{step_, std::move(responder)});
}

void ClusterActor::AdminRestore(uint64_t id, transport::Responder responder) {
  if (!table_.initialized()) {
    return responder.Fail(absl::FailedPreconditionError(absl::StrCat("no placement yet: ", phase_)));
  }
  if (recovering_ || pending_restore_) return responder.Fail(absl::UnavailableError("a restore is in progress"));
  recovering_ = true;
  phase_ = "restoring";
  pending_restore_ = responder;
  Restore(checkpoints_->Ask<CheckpointInfo>(QueryVerified{id}, absl::ToChronoNanoseconds(options_.call_timeout)),
          [this](const absl::Status& unusable) {
            phase_ = "training";
            if (pending_restore_) pending_restore_->Fail(unusable);
            pending_restore_.reset();
          });
}

void ClusterActor::AdminRebalance(bool dry_run, double threshold, transport::Responder& responder) {
  if (!table_.initialized()) {
    return responder.Fail(absl::FailedPreconditionError(absl::StrCat("no placement yet: ", phase_)));
  }
  if (!(threshold == 0 || threshold >= 1)) {  // NaN too
    return responder.Fail(absl::InvalidArgumentError("rebalance threshold must be >= 1 (or 0 for the default)"));
  }
  const RebalancePlan plan = PlanRebalance(table_, loads_.expert_loads(),
                                           Planner(threshold > 0 ? threshold : options_.rebalance_threshold));
  bool applied = false;
  if (!dry_run && !plan.moves.empty()) {
    if (absl::Status can = CanMoveActors(); !can.ok()) return responder.Fail(can);
    if (absl::Status s = table_.Apply(plan.moves); !s.ok()) return responder.Fail(s);
    applied = true;
    StartMigrations(plan.moves, "rebalance");
  }
  ReplyRebalance(plan, applied, table_.epoch(), responder);
}

void ClusterActor::AdminDrain(const std::string& host, transport::Responder& responder) {
  const NodeInfo* node = membership_.Find(host);
  if (node == nullptr || node->role != NodeRole::kHost) {
    return responder.Fail(absl::NotFoundError(absl::StrCat("no host '", host, "'")));
  }
  if (!table_.initialized()) {
    return responder.Fail(absl::FailedPreconditionError(absl::StrCat("no placement yet: ", phase_)));
  }
  if (AliveHosts().size() <= 1 && !node->draining) {
    return responder.Fail(absl::FailedPreconditionError("cannot drain the last host"));
  }
  if (!table_.ActorsOn(host).empty()) {
    if (absl::Status can = CanMoveActors(); !can.ok()) return responder.Fail(can);
  }
  membership_.SetDraining(host, true);
  const std::vector<cluster::Move> moves = table_.DrainHost(host);
  SY_LOG(INFO) << "draining " << host << ": " << moves.size() << " actors move away";
  StartMigrations(moves, absl::StrCat("draining ", host));
  ReplyDone(table_.epoch(), responder);
}

void ClusterActor::AdminRemoveHost(const std::string& host, transport::Responder& responder) {
  const NodeInfo* node = membership_.Find(host);
  if (node == nullptr || node->role != NodeRole::kHost) {
    return responder.Fail(absl::NotFoundError(absl::StrCat("no host '", host, "'")));
  }
  membership_.MarkFailed(host);
  OnHostFailed(host, "removed by an operator");
  ReplyDone(table_.epoch(), responder);
}

void ClusterActor::AdminFaults(const std::string& node, const std::string& spec, transport::Responder responder) {
  auto parsed = transport::ParseFaultSpec(spec);
  if (!parsed.ok()) return responder.Fail(parsed.status());
  if (node.empty() || node == options_.node_id) {
    if (absl::Status s = own_transport_->SetFaultSpec(spec); !s.ok()) return responder.Fail(s);
    SY_LOG(WARNING) << "coordinator transport faults: '" << spec << "'";
    return ReplyDone(table_.epoch(), responder);
  }
  const NodeInfo* target = membership_.Find(node);
  if (target == nullptr || !target->alive) {
    return responder.Fail(absl::NotFoundError(absl::StrCat("no live node '", node, "'")));
  }
  capnp::MallocMessageBuilder b;
  auto faults = cluster::InitBody<proto::admin::AdminRequest>(b, proto::MessageKind::ADMIN, table_.epoch()).initFaults();
  faults.setNodeId(node);
  faults.setSpec(spec);
  rpc_->CallAsync(AddressOf(node), b, {}, absl::Now() + options_.call_timeout,
                  [responder](absl::StatusOr<transport::DecodedMessage> reply) mutable {
                    if (!reply.ok()) return responder.Fail(reply.status());
                    ReplyDone(0, responder);
                  });
}

}  // namespace sy::coordinator
