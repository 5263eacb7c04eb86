// The ClusterActor's core: construction, the saved placement, message dispatch, the
// progress told to the CheckpointActor, addressing, and the admin API (see cluster_actor.h).
#include "services/coordinator/cluster_actor.h"

#include <algorithm>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "proto/admin.capnp.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/admin_reply.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement_codec.h"
#include "services/coordinator/rebalance_planner.h"

namespace sy::coordinator {
namespace {

constexpr char kPlacementMeta[] = "placement";

proto::coordinator::Role ToProtoRole(NodeRole role) {
  return role == NodeRole::kHost ? proto::coordinator::Role::EXPERT_HOST : proto::coordinator::Role::TRAINER;
}

}  // namespace

ClusterActor::ClusterActor(actor::Executor& executor, const CoordinatorOptions& options, transport::RpcNode* rpc,
                           SwitchableFaultTransport* own_transport, CheckpointStore* store,
                           std::shared_ptr<CheckpointActor> checkpoints, metrics::Registry* registry)
    : Actor(executor, "coordinator-cluster", registry),
      options_(options),
      rpc_(rpc),
      own_transport_(own_transport),
      store_(store),
      checkpoints_(std::move(checkpoints)),
      membership_(absl::ToChronoNanoseconds(options.heartbeat_timeout)),
      table_(cluster::ModelShape{}),
      loads_(options.load_alpha) {
  if (registry != nullptr) {
    metrics_.epoch = &registry->GetGauge("sy_coordinator_epoch", "Current placement epoch.");
    metrics_.hosts_alive = &registry->GetGauge("sy_coordinator_hosts_alive", "Hosts with current heartbeats.");
    metrics_.recoveries = &registry->GetCounter("sy_coordinator_recoveries_total", "Host failures handled.");
    metrics_.migrations = &registry->GetCounter("sy_coordinator_moves_total", "Actor placement moves.",
                                                {{"kind", "migrate"}});
    metrics_.replications = &registry->GetCounter("sy_coordinator_moves_total", "Actor placement moves.",
                                                  {{"kind", "replicate"}});
  }
  Become("serving", [this](ClusterMsg& msg) {
    Handle(msg);
    EndTurn();
  });
}

absl::Status ClusterActor::Start(const CheckpointSnapshot& checkpoints) {
  checkpoint_ = checkpoints;
  outcome_seen_ = checkpoints.latest_id;
  auto saved = store_->GetMeta(kPlacementMeta);
  if (saved.ok()) {
    auto table = cluster::ParseTable(*saved);
    if (!table.ok()) return table.status();
    AdoptShape(table->shape, "the saved placement");
    if (absl::Status s = table_.Restore(table->epoch, table->entries); !s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("saved placement does not fit its model shape: ", s.message()));
    }
    endpoints_ = table->endpoints;
    // The hosts of the saved table must re-register within the timeout, or they failed.
    for (const std::string& host : table_.hosts()) {
      NodeInfo placeholder;
      placeholder.id = host;
      placeholder.role = NodeRole::kHost;
      placeholder.endpoint = endpoints_[host];
      (void)membership_.Register(placeholder, Now(), NowUnixMs());
      if (!placeholder.endpoint.empty()) {
        (void)rpc_->transport().Connect(HostPeer(host, placeholder.endpoint), placeholder.endpoint);
      }
    }
    phase_ = "waiting for hosts to re-register";
    SY_LOG(INFO) << "restored placement epoch " << table_.epoch() << " over " << table_.hosts().size() << " hosts";
  } else if (saved.status().code() != absl::StatusCode::kNotFound) {
    return saved.status();
  }
  PublishProgress();
  Tell(ClusterTick{});
  return absl::OkStatus();
}

void ClusterActor::Handle(ClusterMsg& msg) {
  std::visit(
      [this](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, ClusterRequest>) {
          OnRequest(m);
        } else if constexpr (std::is_same_v<T, ClusterTick>) {
          OnTick();
        } else if constexpr (std::is_same_v<T, CheckpointEvent>) {
          OnCheckpointEvent(m);
        } else if constexpr (std::is_same_v<T, RollbackAcked>) {
          if (m.generation == restore_generation_) trainers_awaiting_rollback_.erase(m.trainer);
        } else {
          static_assert(sizeof(T) == 0, "ClusterActor does not handle this message");
        }
      },
      msg);
}

void ClusterActor::EndTurn() {
  UpdateGauges();
  PublishProgress();
}

void ClusterActor::UpdateGauges() {
  if (metrics_.epoch == nullptr) return;
  metrics_.epoch->Set(static_cast<double>(table_.epoch()));
  metrics_.hosts_alive->Set(static_cast<double>(membership_.AliveCount(NodeRole::kHost)));
}

void ClusterActor::PublishProgress() {
  ClusterProgress progress;
  progress.step = step_;
  progress.epoch = table_.epoch();
  progress.ready = table_.initialized() && !recovering_;
  for (const auto& [actor, hosts] : table_.entries()) progress.stream_from[actor] = AddressOf(hosts.front());
  progress.finished_at_step = finished_at_step_;
  progress.outcome_seen = outcome_seen_;
  progress.checkpoint_due = std::exchange(checkpoint_due_, false);
  progress.abandon_reason = std::exchange(abandon_reason_, std::string());
  if (progress == last_progress_) return;
  last_progress_ = progress;
  last_progress_.checkpoint_due = false;
  last_progress_.abandon_reason.clear();
  checkpoints_->Tell(std::move(progress));
}

void ClusterActor::PlacementChanged() {
  if (!table_.initialized()) return;
  if (absl::Status s = store_->PutMeta(kPlacementMeta, cluster::SerializeTable(table_, endpoints_)); !s.ok()) {
    SY_LOG(ERROR) << "could not save the placement table: " << s;
  }
  for (const NodeInfo& host : membership_.Nodes(NodeRole::kHost)) {
    if (!host.alive) continue;
    capnp::MallocMessageBuilder b;
    auto req = cluster::InitBody<proto::coordinator::PlacementRequest>(b, proto::MessageKind::PLACEMENT, table_.epoch());
    cluster::TableToProto(table_, endpoints_, req.initUpdate());
    req.setKnownEpoch(table_.epoch());
    rpc_->CallAsync(AddressOf(host.id), b, {}, absl::Now() + options_.call_timeout,
                    [id = host.id](absl::StatusOr<transport::DecodedMessage> reply) {
                      if (!reply.ok()) SY_LOG(WARNING) << "placement update to " << id << ": " << reply.status();
                    });
  }
}

void ClusterActor::OnRequest(ClusterRequest& request) {
  switch (request.message.envelope().getKind()) {
    case proto::MessageKind::REGISTER:
      return OnRegister(request);
    case proto::MessageKind::HEARTBEAT:
      return OnHeartbeat(request);
    case proto::MessageKind::PLACEMENT:
      return OnPlacement(request);
    case proto::MessageKind::LOAD_REPORT:
      return OnLoadReport(request);
    case proto::MessageKind::ADMIN:
      return OnAdmin(request);
    default:
      return request.responder.Fail(absl::UnimplementedError("the coordinator does not serve this message kind"));
  }
}

transport::Address ClusterActor::AddressOf(const std::string& node) const {
  const NodeInfo* info = membership_.Find(node);
  if (info != nullptr && info->role == NodeRole::kTrainer) return {node, transport::Route::kBound};
  auto endpoint = endpoints_.find(node);
  if (endpoint == endpoints_.end()) return {node, transport::Route::kConnected};
  return {HostPeer(node, endpoint->second), transport::Route::kConnected};
}

std::map<cluster::ActorKey, std::vector<std::string>> ClusterActor::RestoreTargets() const {
  std::map<cluster::ActorKey, std::vector<std::string>> targets = table_.entries();
  for (auto& [actor, hosts] : targets) {
    for (std::string& host : hosts) host = AddressOf(host).peer;
  }
  return targets;
}

std::vector<std::string> ClusterActor::AliveHosts() const {
  std::vector<std::string> hosts;
  for (const NodeInfo& n : membership_.Nodes(NodeRole::kHost)) {
    if (n.alive && !n.draining) hosts.push_back(n.id);
  }
  return hosts;
}

void ClusterActor::ReplyDone(transport::Responder& responder) {
  capnp::MallocMessageBuilder b;
  cluster::InitBody<proto::admin::AdminReply>(b, proto::MessageKind::ADMIN, table_.epoch()).setDone();
  responder.Reply(b);
}

void ClusterActor::OnAdmin(ClusterRequest& request) {
  auto body = request.message.Body<proto::admin::AdminRequest>();
  if (!body.ok()) return request.responder.Fail(body.status());
  transport::Responder& r = request.responder;
  switch (body->which()) {
    case proto::admin::AdminRequest::STATUS:
      return AdminStatus(r);
    case proto::admin::AdminRequest::HOSTS:
      return AdminHosts(r);
    case proto::admin::AdminRequest::EXPERTS:
      return AdminExperts(r);
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
      return AdminHostLoadSeries(r);
    default:
      return r.Fail(absl::InvalidArgumentError("unknown admin command"));
  }
}

void ClusterActor::AdminStatus(transport::Responder& responder) {
  capnp::MallocMessageBuilder b;
  auto status = cluster::InitBody<proto::admin::AdminReply>(b, proto::MessageKind::ADMIN, table_.epoch()).initStatus();
  status.setEpoch(table_.epoch());
  status.setStep(step_);
  uint32_t alive = 0, total = 0;
  for (const NodeInfo& h : membership_.Nodes(NodeRole::kHost)) {
    ++total;
    alive += h.alive ? 1 : 0;
  }
  status.setHostsAlive(alive);
  status.setHostsTotal(total);
  status.setTrainers(static_cast<uint32_t>(membership_.AliveCount(NodeRole::kTrainer)));
  status.setLatestCheckpoint(checkpoint_.latest_id);
  status.setLatestCheckpointStep(checkpoint_.latest_step);
  status.setPhase(phase_);
  status.setCheckpointInProgress(checkpoint_.in_progress_id);
  status.setCheckpointInProgressStep(checkpoint_.in_progress_step);
  status.setPlacementReady(table_.initialized());
  status.setMaxOverMeanLoad(table_.initialized() ? MaxOverMean(loads_.HostLoads(table_)) : 0.0);
  status.setRecoveries(recoveries_);
  status.setCheckpointsCommitted(checkpoint_.committed);
  status.setMigrations(migrations_);
  status.setReplications(replications_);
  responder.Reply(b);
}

void ClusterActor::AdminHosts(transport::Responder& responder) {
  std::vector<NodeInfo> nodes = membership_.Nodes(NodeRole::kHost);
  for (NodeInfo& t : membership_.Nodes(NodeRole::kTrainer)) nodes.push_back(std::move(t));
  const auto host_loads = loads_.HostLoads(table_);
  capnp::MallocMessageBuilder b;
  auto list = cluster::InitBody<proto::admin::AdminReply>(b, proto::MessageKind::ADMIN, table_.epoch())
                  .initHosts(static_cast<unsigned>(nodes.size()));
  for (size_t i = 0; i < nodes.size(); ++i) {
    const NodeInfo& n = nodes[i];
    auto h = list[i];
    h.setNodeId(n.id);
    h.setEndpoint(n.endpoint);
    h.setRole(ToProtoRole(n.role));
    h.setAlive(n.alive);
    h.setDraining(n.draining);
    h.setLastHeartbeatUnixMs(n.last_seen_unix_ms);
    h.setActorCount(static_cast<uint32_t>(n.role == NodeRole::kHost ? table_.ActorsOn(n.id).size() : 0));
    auto load = host_loads.find(n.id);
    h.setLoad(load == host_loads.end() ? 0.0 : load->second);
    h.setDevice(n.device);
    h.setStep(n.step);
    h.setMemoryBytes(n.memory_bytes);
  }
  cluster::ReplyAdmin(b, responder);
}

void ClusterActor::AdminExperts(transport::Responder& responder) {
  std::vector<cluster::ActorKey> experts;
  for (const cluster::ActorKey& a : table_.shape().Actors()) {
    if (!a.dense) experts.push_back(a);
  }
  capnp::MallocMessageBuilder b;
  auto list = cluster::InitBody<proto::admin::AdminReply>(b, proto::MessageKind::ADMIN, table_.epoch())
                  .initExperts(static_cast<unsigned>(experts.size()));
  for (size_t i = 0; i < experts.size(); ++i) {
    auto e = list[i];
    e.initExpert().setLayer(experts[i].layer);
    e.getExpert().setExpert(experts[i].expert);
    const std::vector<std::string> hosts = table_.HostsOf(experts[i]);
    auto out = e.initHosts(static_cast<unsigned>(hosts.size()));
    for (unsigned h = 0; h < hosts.size(); ++h) out.set(h, hosts[h]);
    auto last = loads_.last_step().find(experts[i]);
    if (last != loads_.last_step().end()) {
      e.setTokensLastStep(last->second.tokens);
      e.setDroppedLastStep(last->second.dropped);
    }
    e.setLoad(loads_.ExpertLoad(experts[i]));
  }
  cluster::ReplyAdmin(b, responder);
}

void ClusterActor::AdminHostLoadSeries(transport::Responder& responder) {
  const auto& steps = host_load_series_.steps();
  capnp::MallocMessageBuilder b;
  auto list = cluster::InitBody<proto::admin::AdminReply>(b, proto::MessageKind::ADMIN, table_.epoch())
                  .initHostLoadSeries(static_cast<unsigned>(steps.size()));
  unsigned i = 0;
  for (const auto& [step, load] : steps) {
    auto out = list[i++];
    out.setStep(step);
    out.setEpoch(load.epoch);
    auto hosts = out.initHosts(static_cast<unsigned>(load.tokens.size()));
    auto tokens = out.initTokens(static_cast<unsigned>(load.tokens.size()));
    unsigned h = 0;
    for (const auto& [host, t] : load.tokens) {
      hosts.set(h, host);
      tokens.set(h++, t);
    }
    out.setMaxOverMean(MaxOverMean(load.tokens));
  }
  cluster::ReplyAdmin(b, responder);
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
  AbandonCheckpoint(absl::StrCat("restore of checkpoint ", id));
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
  if (threshold < 0 || (threshold > 0 && threshold < 1)) {
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
  capnp::MallocMessageBuilder b;
  auto result = cluster::InitBody<proto::admin::AdminReply>(b, proto::MessageKind::ADMIN, table_.epoch()).initRebalance();
  auto moves = result.initMoves(static_cast<unsigned>(plan.moves.size()));
  for (size_t i = 0; i < plan.moves.size(); ++i) {
    plan.moves[i].actor.ToProto(moves[i].initActor());
    moves[i].setFromHost(plan.moves[i].from);
    moves[i].setToHost(plan.moves[i].to);
    moves[i].setReplicate(plan.moves[i].replicate);
  }
  result.setMaxOverMeanBefore(plan.max_over_mean_before);
  result.setMaxOverMeanAfter(plan.max_over_mean_after);
  result.setApplied(applied);
  result.setEpoch(table_.epoch());
  cluster::ReplyAdmin(b, responder);
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
  ReplyDone(responder);
}

void ClusterActor::AdminRemoveHost(const std::string& host, transport::Responder& responder) {
  const NodeInfo* node = membership_.Find(host);
  if (node == nullptr || node->role != NodeRole::kHost) {
    return responder.Fail(absl::NotFoundError(absl::StrCat("no host '", host, "'")));
  }
  membership_.MarkFailed(host);
  OnHostFailed(host, "removed by an operator");
  ReplyDone(responder);
}

void ClusterActor::AdminFaults(const std::string& node, const std::string& spec, transport::Responder responder) {
  auto parsed = transport::ParseFaultSpec(spec);
  if (!parsed.ok()) return responder.Fail(parsed.status());
  if (node.empty() || node == options_.node_id) {
    if (absl::Status s = own_transport_->SetFaultSpec(spec); !s.ok()) return responder.Fail(s);
    SY_LOG(WARNING) << "coordinator transport faults: '" << spec << "'";
    return ReplyDone(responder);
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
                    capnp::MallocMessageBuilder done;
                    cluster::InitBody<proto::admin::AdminReply>(done, proto::MessageKind::ADMIN).setDone();
                    responder.Reply(done);
                  });
}

std::string ClusterActor::HostPeer(const std::string& host, const std::string& endpoint) {
  return absl::StrCat(host, "@", endpoint);
}

int64_t ClusterActor::NowUnixMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace sy::coordinator
