// The coordinator's cluster state and control flows (see cluster_actor.h).
#include "services/coordinator/cluster_actor.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "proto/admin.capnp.h"
#include "proto/coordinator.capnp.h"
#include "proto/expert.capnp.h"
#include "services/cluster/admin_reply.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement_codec.h"
#include "services/coordinator/rebalance_planner.h"

namespace sy::coordinator {
namespace {

constexpr char kPlacementMeta[] = "placement";

int64_t NowUnixMs() { return absl::ToUnixMillis(absl::Now()); }

proto::coordinator::Role ToProtoRole(NodeRole role) {
  return role == NodeRole::kHost ? proto::coordinator::Role::EXPERT_HOST : proto::coordinator::Role::TRAINER;
}

// One connection per (host, endpoint): a host that comes back on another port (a
// restart, a fresh cluster on a restored database) gets a new one, not the stale socket.
std::string HostPeer(const std::string& host, const std::string& endpoint) {
  return absl::StrCat(host, "@", endpoint);
}

size_t Replications(const std::vector<cluster::Move>& moves) {
  return static_cast<size_t>(std::count_if(moves.begin(), moves.end(), [](const cluster::Move& m) { return m.replicate; }));
}

}  // namespace

ClusterActor::ClusterActor(actor::Executor& executor, const CoordinatorOptions& options, std::string endpoint,
                           transport::RpcNode* rpc, SwitchableFaultTransport* own_transport, CheckpointStore* store,
                           std::shared_ptr<CatalogActor> catalog, metrics::Registry* registry)
    : Actor(executor, "coordinator-cluster", registry),
      options_(options),
      endpoint_(std::move(endpoint)),
      rpc_(rpc),
      own_transport_(own_transport),
      store_(store),
      catalog_(std::move(catalog)),
      membership_(absl::ToChronoNanoseconds(options.heartbeat_timeout)),
      table_(options.shape),
      loads_(options.load_alpha) {
  if (registry != nullptr) {
    metrics_.epoch = &registry->GetGauge("sy_coordinator_epoch", "Current placement epoch.");
    metrics_.hosts_alive = &registry->GetGauge("sy_coordinator_hosts_alive", "Hosts with current heartbeats.");
    metrics_.checkpoints_committed = &registry->GetCounter("sy_coordinator_checkpoints_total", "Checkpoints ended.",
                                                           {{"result", "committed"}});
    metrics_.checkpoints_failed = &registry->GetCounter("sy_coordinator_checkpoints_total", "Checkpoints ended.",
                                                        {{"result", "failed"}});
    metrics_.recoveries = &registry->GetCounter("sy_coordinator_recoveries_total", "Host failures handled.");
    metrics_.migrations = &registry->GetCounter("sy_coordinator_moves_total", "Actor placement moves.",
                                                {{"kind", "migrate"}});
    metrics_.replications = &registry->GetCounter("sy_coordinator_moves_total", "Actor placement moves.",
                                                  {{"kind", "replicate"}});
  }
  Become("serving", [this](ClusterMsg& msg) {
    Handle(msg);
    UpdateGauges();
  });
}

void ClusterActor::UpdateGauges() {
  if (metrics_.epoch == nullptr) return;
  metrics_.epoch->Set(static_cast<double>(table_.epoch()));
  metrics_.hosts_alive->Set(static_cast<double>(membership_.AliveCount(NodeRole::kHost)));
}

void ClusterActor::CountMoves(const std::vector<cluster::Move>& moves) {
  for (const cluster::Move& m : moves) {
    if (m.to.empty()) continue;
    ++(m.replicate ? replications_ : migrations_);
    if (metrics_.migrations != nullptr) (m.replicate ? metrics_.replications : metrics_.migrations)->Increment();
  }
}

absl::Status ClusterActor::Start() {
  auto saved = store_->GetMeta(kPlacementMeta);
  if (saved.ok()) {
    auto table = cluster::ParseTable(*saved);
    if (!table.ok()) return table.status();
    if (absl::Status s = table_.Restore(table->epoch, table->entries); !s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("saved placement does not fit the model shape: ", s.message()));
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
  auto list = store_->List();
  if (!list.ok()) return list.status();
  for (const CheckpointInfo& info : *list) {
    if (info.id > latest_checkpoint_) {
      latest_checkpoint_ = info.id;
      latest_checkpoint_step_ = info.step;
    }
    auto_checkpoint_target_ = std::max(auto_checkpoint_target_, info.step);
  }
  next_checkpoint_id_ = latest_checkpoint_ + 1;
  Tell(ClusterTick{});
  return absl::OkStatus();
}

void ClusterActor::Handle(ClusterMsg& msg) {
  if (auto* r = std::get_if<ClusterRequest>(&msg)) return OnRequest(*r);
  if (std::holds_alternative<ClusterTick>(msg)) return OnTick();
  if (auto* e = std::get_if<CatalogEvent>(&msg)) return OnCatalogEvent(*e);
  if (auto* a = std::get_if<RollbackAcked>(&msg)) {
    if (a->generation == restore_generation_) trainers_awaiting_rollback_.erase(a->trainer);
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

// ---------------------------------------------------------------- membership

void ClusterActor::OnRegister(ClusterRequest& request) {
  auto body = request.message.Body<proto::coordinator::RegisterRequest>();
  if (!body.ok()) return request.responder.Fail(body.status());
  NodeInfo node;
  node.id = body->getNodeId().cStr();
  if (node.id != request.message.envelope().getSender().cStr()) {
    return request.responder.Fail(absl::InvalidArgumentError(
        absl::StrCat("register: nodeId '", node.id, "' differs from the sender's id")));
  }
  switch (body->getRole()) {
    case proto::coordinator::Role::EXPERT_HOST:
      node.role = NodeRole::kHost;
      break;
    case proto::coordinator::Role::TRAINER:
      node.role = NodeRole::kTrainer;
      break;
    default:
      return request.responder.Fail(absl::InvalidArgumentError("register: only hosts and trainers register"));
  }
  node.endpoint = body->getEndpoint().cStr();
  node.device = body->getDevice().cStr();
  node.memory_bytes = body->getMemoryBytes();
  node.incarnation = body->getIncarnation();
  if (node.role == NodeRole::kHost && node.endpoint.empty()) {
    return request.responder.Fail(absl::InvalidArgumentError("register: a host needs an endpoint"));
  }
  std::vector<cluster::ActorKey> held;
  for (auto ref : body->getActors()) {
    auto key = cluster::ActorKey::FromProto(ref);
    if (!key.ok()) return request.responder.Fail(key.status());
    held.push_back(*key);
  }
  const std::string id = node.id;
  const NodeRole role = node.role;
  auto outcome = membership_.Register(node, Now(), NowUnixMs());
  if (!outcome.ok()) return request.responder.Fail(outcome.status());
  SY_LOG(INFO) << (role == NodeRole::kHost ? "host " : "trainer ") << id << " registered"
               << (outcome->restarted ? " (restarted)" : "");
  if (role == NodeRole::kTrainer && finished_at_step_) {
    finished_at_step_.reset();  // training goes on (e.g. resumed from a checkpoint)
    MaybeAutoCheckpoint();
  }

  if (role == NodeRole::kHost) {
    auto known = endpoints_.find(id);
    if (known == endpoints_.end() || known->second != node.endpoint) {
      absl::Status connected = rpc_->transport().Connect(HostPeer(id, node.endpoint), node.endpoint);
      if (!connected.ok() && connected.code() != absl::StatusCode::kAlreadyExists) {
        return request.responder.Fail(connected);
      }
      endpoints_[id] = node.endpoint;
    }
    if (!table_.initialized()) {
      MaybeInitializePlacement();
    } else if (std::find(table_.hosts().begin(), table_.hosts().end(), id) == table_.hosts().end()) {
      if (absl::Status can = CanMoveActors(); !can.ok()) {
        SY_LOG(WARNING) << "host " << id << " joined; its actors move at the next checkpoint (" << can.message()
                        << ")";
        hosts_waiting_to_join_.insert(id);
      } else {
        const std::vector<cluster::Move> moves = table_.AddHost(id);
        SY_LOG(INFO) << "host " << id << " joined: " << moves.size() << " actors move to it";
        StartMigrations(moves, absl::StrCat("host ", id, " joined"));
      }
    } else {
      // A host the table relies on: if it lost the actors it should hold, recover them.
      std::vector<cluster::ActorKey> expected = table_.ActorsOn(id);
      std::sort(held.begin(), held.end());
      const bool has_all = std::includes(held.begin(), held.end(), expected.begin(), expected.end());
      if (!expected.empty() && !has_all) {
        Recover(absl::StrCat("host ", id, " came back without its actors"));
      } else {
        PlacementChanged();  // make sure it has the current table
      }
    }
  }
  capnp::MallocMessageBuilder b;
  auto reply = cluster::InitBody<proto::coordinator::RegisterReply>(b, proto::MessageKind::REGISTER, table_.epoch());
  reply.setEpoch(table_.epoch());
  reply.setHeartbeatIntervalMs(static_cast<uint32_t>(absl::ToInt64Milliseconds(options_.heartbeat_interval)));
  if (table_.initialized()) cluster::TableToProto(table_, endpoints_, reply.initTable());
  request.responder.Reply(b);
}

void ClusterActor::MaybeInitializePlacement() {
  const std::vector<std::string> hosts = AliveHosts();
  if (hosts.size() < options_.expected_hosts) {
    phase_ = absl::StrCat("waiting for hosts (", hosts.size(), " of ", options_.expected_hosts, ")");
    return;
  }
  if (absl::Status s = table_.Initialize(hosts); !s.ok()) {
    SY_LOG(ERROR) << "placement: " << s;
    return;
  }
  phase_ = "training";
  SY_LOG(INFO) << "initial placement over " << hosts.size() << " hosts, epoch " << table_.epoch();
  PlacementChanged();
}

void ClusterActor::OnHeartbeat(ClusterRequest& request) {
  auto body = request.message.Body<proto::coordinator::HeartbeatRequest>();
  if (!body.ok()) return request.responder.Fail(body.status());
  const std::string id = body->getNodeId().cStr();
  absl::Status s = membership_.Heartbeat(id, body->getIncarnation(), body->getStep(), body->getEpoch(),
                                         body->getDraining(), Now(), NowUnixMs());
  capnp::MallocMessageBuilder b;
  auto reply = cluster::InitBody<proto::coordinator::HeartbeatReply>(b, proto::MessageKind::HEARTBEAT, table_.epoch());
  reply.setEpoch(table_.epoch());
  reply.setReregister(s.code() == absl::StatusCode::kNotFound);
  request.responder.Reply(b);
  if (!s.ok()) return;
  const NodeInfo* node = membership_.Find(id);
  if (node != nullptr && node->role == NodeRole::kTrainer && node->draining) {
    // A trainer's last heartbeat says it finished: it leaves, it did not fail.
    const uint64_t finished = node->step;
    membership_.MarkFailed(id);
    SY_LOG(INFO) << "trainer " << id << " finished at step " << finished << " and left";
    if (membership_.AliveCount(NodeRole::kTrainer) == 0) {
      // Training is over: the hosts stay at this step, so a later checkpoint would wait in vain.
      finished_at_step_ = finished;
      if (checkpoint_in_progress_ != 0 && checkpoint_in_progress_step_ > finished) {
        AbortCheckpointInProgress(absl::StrCat("every trainer finished at step ", finished, ": step ",
                                               checkpoint_in_progress_step_, " will not come"));
      }
    }
    return;
  }
  const uint64_t step = membership_.MaxStep(NodeRole::kHost);
  if (step > step_) {
    step_ = step;
    MaybeAutoCheckpoint();
  }
}

void ClusterActor::OnPlacement(ClusterRequest& request) {
  auto body = request.message.Body<proto::coordinator::PlacementRequest>();
  if (!body.ok()) return request.responder.Fail(body.status());
  if (body->which() != proto::coordinator::PlacementRequest::GET) {
    return request.responder.Fail(absl::InvalidArgumentError("only the coordinator publishes placement updates"));
  }
  if (!table_.initialized()) {
    return request.responder.Fail(absl::UnavailableError(absl::StrCat("placement not ready: ", phase_)));
  }
  capnp::MallocMessageBuilder b;
  auto reply = cluster::InitBody<proto::coordinator::PlacementReply>(b, proto::MessageKind::PLACEMENT, table_.epoch());
  reply.setEpoch(table_.epoch());
  const bool held = trainers_awaiting_rollback_.count(request.message.envelope().getSender().cStr()) != 0;
  if (!held && body->getKnownEpoch() != table_.epoch()) cluster::TableToProto(table_, endpoints_, reply.initTable());
  request.responder.Reply(b);
}

void ClusterActor::OnLoadReport(ClusterRequest& request) {
  auto body = request.message.Body<proto::coordinator::LoadReportRequest>();
  if (!body.ok()) return request.responder.Fail(body.status());
  const cluster::ModelShape& shape = options_.shape;
  std::vector<ExpertTokens> loads;
  for (auto l : body->getLoads()) {
    const auto key = l.getExpert();
    if (key.getLayer() >= shape.num_layers || key.getExpert() >= shape.num_experts) {
      return request.responder.Fail(absl::InvalidArgumentError(
          absl::StrCat("load report: no expert (", key.getLayer(), ", ", key.getExpert(), ") in this model")));
    }
    loads.push_back({cluster::ActorKey::Expert(key.getLayer(), key.getExpert()), l.getTokens(), l.getDropped()});
  }
  host_load_series_.Report(body->getTrainer().cStr(), body->getStep(), loads, table_);
  loads_.Report(body->getTrainer().cStr(), body->getStep(), loads,
                std::max<size_t>(1, membership_.AliveCount(NodeRole::kTrainer)));
  capnp::MallocMessageBuilder b;
  cluster::InitBody<proto::coordinator::LoadReportReply>(b, proto::MessageKind::LOAD_REPORT, table_.epoch())
      .setEpoch(table_.epoch());
  request.responder.Reply(b);
}

void ClusterActor::OnTick() {
  for (const NodeInfo& failed : membership_.Expire(Now())) {
    if (failed.role == NodeRole::kHost) {
      OnHostFailed(failed.id, "missed heartbeats");
    } else {
      OnTrainerFailed(failed.id);
    }
  }
  After(absl::ToChronoNanoseconds(std::max(absl::Milliseconds(10), options_.heartbeat_timeout / 4)),
        [this] { OnTick(); });
}

// ---------------------------------------------------------------- placement changes

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

absl::Status ClusterActor::CanMoveActors() const {
  if (latest_checkpoint_ == 0) {
    return absl::FailedPreconditionError(
        "moving actors needs a committed checkpoint (their state travels through it): take one first "
        "(syctl checkpoint now, or --checkpoint_every)");
  }
  if (recovering_) return absl::UnavailableError("a recovery is under way; try again after it");
  return absl::OkStatus();
}

// Moves take effect the way a recovery does: the new table goes out, every actor is
// restored from the latest checkpoint (a moved one on its new host) at one step, and
// the trainers replay from there. Consistent by construction (no actor can be caught
// between two steps), at the cost of replaying up to --checkpoint_every steps.
void ClusterActor::StartMigrations(const std::vector<cluster::Move>& moves, const std::string& why) {
  if (moves.empty()) return;
  CountMoves(moves);
  PlacementChanged();
  Recover(absl::StrCat(why, ": ", moves.size(), " actors move"));
}

void ClusterActor::AdmitWaitingHosts() {
  std::vector<cluster::Move> moves;
  std::vector<std::string> joined;
  for (const std::string& id : hosts_waiting_to_join_) {
    const NodeInfo* node = membership_.Find(id);
    const auto& in_table = table_.hosts();
    if (node == nullptr || !node->alive || node->draining ||
        std::find(in_table.begin(), in_table.end(), id) != in_table.end()) {
      continue;
    }
    const std::vector<cluster::Move> to_it = table_.AddHost(id);
    SY_LOG(INFO) << "host " << id << " joined: " << to_it.size() << " actors move to it";
    moves.insert(moves.end(), to_it.begin(), to_it.end());
    joined.push_back(id);
  }
  hosts_waiting_to_join_.clear();
  StartMigrations(moves, absl::StrCat("host ", absl::StrJoin(joined, ", "), " joined"));
}

void ClusterActor::OnHostFailed(const std::string& host, const std::string& why) {
  hosts_waiting_to_join_.erase(host);
  const std::vector<cluster::Move> moves = table_.RemoveHost(host);
  SY_LOG(WARNING) << "host " << host << " failed (" << why << "): " << moves.size() << " actors re-placed";
  if (moves.empty()) return;  // it served nothing
  ++recoveries_;
  if (metrics_.recoveries != nullptr) metrics_.recoveries->Increment();
  PlacementChanged();
  Recover(absl::StrCat("host ", host, " failed"));
}

void ClusterActor::OnTrainerFailed(const std::string& trainer) {
  const size_t left = membership_.AliveCount(NodeRole::kTrainer);
  SY_LOG(WARNING) << "trainer " << trainer << " missed heartbeats: failed (" << left << " trainers left)";
  if (!table_.initialized() || left == 0) return;  // nothing was running, or nobody is left to replay
  // Its micro-batches of the open step are lost: the survivors replay from the
  // latest checkpoint and split the micro-batches among themselves.
  ++recoveries_;
  if (metrics_.recoveries != nullptr) metrics_.recoveries->Increment();
  Recover(absl::StrCat("trainer ", trainer, " failed"));
}

void ClusterActor::AbortCheckpointInProgress(const std::string& why) {
  if (checkpoint_in_progress_ == 0) return;
  catalog_->Tell(AbortCheckpoint{checkpoint_in_progress_, absl::AbortedError(why)});
}

void ClusterActor::Recover(const std::string& why) {
  AbortCheckpointInProgress(absl::StrCat("recovery: ", why));
  recovering_ = true;
  phase_ = "recovering";
  SY_LOG(WARNING) << "recovery: " << why;
  HoldTrainersUntilRollback();
  auto latest = catalog_->Ask<CheckpointInfo>(QueryLatestUsable{}, absl::ToChronoNanoseconds(options_.call_timeout));
  Await<CheckpointInfo>(std::move(latest), [this](absl::StatusOr<CheckpointInfo> info) {
    if (!info.ok()) {
      trainers_awaiting_rollback_.clear();  // no rollback will come
      phase_ = absl::StrCat("degraded: cannot recover (", info.status().message(), ")");
      recovering_ = false;
      SY_LOG(ERROR) << "recovery impossible: " << info.status();
      StopTrainers(absl::StrCat("recovery impossible: ", info.status().message(),
                                absl::IsNotFound(info.status())
                                    ? " (a committed checkpoint makes a failure recoverable: --checkpoint_every, or "
                                      "`syctl checkpoint now`)"
                                    : ""));
      return;
    }
    table_.BumpEpoch();
    PlacementChanged();
    catalog_->Tell(RestoreCheckpoint{info->id, RestoreTargets(), table_.epoch()});
  });
}

// ---------------------------------------------------------------- checkpoints

void ClusterActor::StartCheckpoint(uint64_t at_step) {
  const uint64_t id = next_checkpoint_id_++;
  checkpoint_in_progress_ = id;
  checkpoint_in_progress_step_ = at_step;
  BeginCheckpoint begin;
  begin.info.id = id;
  begin.info.step = at_step;
  begin.info.epoch = table_.epoch();
  begin.info.config_hash = options_.config_hash;
  begin.info.seed = options_.seed;
  begin.actors = options_.shape.Actors();
  catalog_->Tell(std::move(begin));
  SY_LOG(INFO) << "checkpoint " << id << " at step " << at_step << " started";
  for (const auto& [actor, hosts] : table_.entries()) {
    capnp::MallocMessageBuilder b;
    auto req = cluster::InitBody<proto::expert::StateStreamRequest>(b, proto::MessageKind::STATE_STREAM, table_.epoch());
    actor.ToProto(req.initActor());
    req.setCheckpointId(id);
    auto out = req.initStreamOut();
    out.setDestination(options_.node_id);
    out.setDestinationEndpoint(endpoint_);
    out.setAtStep(at_step);
    out.setChunkBytes(options_.chunk_bytes);
    std::weak_ptr<CatalogActor> catalog = catalog_;
    rpc_->CallAsync(AddressOf(hosts.front()), b, {}, absl::Now() + options_.checkpoint_timeout,
                    [catalog, id, actor = actor](absl::StatusOr<transport::DecodedMessage> reply) {
                      if (reply.ok()) return;
                      if (auto c = catalog.lock()) {
                        c->Tell(AbortCheckpoint{id, absl::Status(reply.status().code(),
                                                                 absl::StrCat("streaming ", actor.ToString(), ": ",
                                                                              reply.status().message()))});
                      }
                    });
  }
}

void ClusterActor::MaybeAutoCheckpoint() {
  if (options_.checkpoint_every == 0 || !table_.initialized() || checkpoint_in_progress_ != 0 || recovering_) return;
  const uint64_t n = options_.checkpoint_every;
  const uint64_t newest = step_ / n * n;
  // The next multiple of N, asked for ahead when the hosts have not reached it yet
  // (they stream it when they get there). Hosts keep the state of their last
  // kHostSnapshotsKept multiples of N; an older one is gone, so the oldest kept is taken instead.
  uint64_t target = auto_checkpoint_target_ + n;
  const uint64_t oldest_kept = newest >= (kHostSnapshotsKept - 1) * n ? newest - (kHostSnapshotsKept - 1) * n : 0;
  if (target < oldest_kept) {
    SY_LOG(WARNING) << "checkpoints at steps " << target << ".." << oldest_kept - n
                    << " skipped: the hosts are at step " << step_ << " and keep only their last "
                    << kHostSnapshotsKept << " snapshots";
    target = oldest_kept;
  }
  if (finished_at_step_ && target > *finished_at_step_) return;  // training is over before that step
  auto_checkpoint_target_ = target;
  StartCheckpoint(target);
}

RebalanceOptions ClusterActor::Planner(double threshold) const {
  RebalanceOptions planner;
  planner.threshold = threshold;
  planner.max_replicas = options_.max_replicas;
  return planner;
}

void ClusterActor::MaybeAutoRebalance(uint64_t id, uint64_t step) {
  if (!options_.auto_rebalance || !table_.initialized() || recovering_ || !loads_.has_load()) return;
  if (id != latest_checkpoint_) return;  // moves go through the newest checkpoint only
  if (last_auto_rebalance_step_ && step < *last_auto_rebalance_step_ + options_.rebalance_every_steps) return;
  const double before = MaxOverMean(loads_.HostLoads(table_));
  if (before <= options_.rebalance_threshold) return;
  const RebalancePlan plan = PlanRebalance(table_, loads_.expert_loads(), Planner(options_.rebalance_threshold));
  last_auto_rebalance_step_ = step;  // tried: the next try waits rebalance_every_steps, moved or not
  if (plan.moves.empty() || plan.max_over_mean_after >= plan.max_over_mean_before) {
    SY_LOG(INFO) << "automatic rebalance at checkpoint " << id << " (step " << step << "): host load max/mean "
                 << before << " > " << options_.rebalance_threshold << ", but no move lowers it (at most "
                 << options_.max_replicas << " replicas per expert)";
    return;
  }
  if (absl::Status s = table_.Apply(plan.moves); !s.ok()) {
    SY_LOG(ERROR) << "automatic rebalance: cannot apply its plan: " << s;
    return;
  }
  SY_LOG(INFO) << "automatic rebalance at checkpoint " << id << " (step " << step << "): host load max/mean "
               << plan.max_over_mean_before << " -> " << plan.max_over_mean_after << " (predicted), "
               << plan.moves.size() << " moves (" << Replications(plan.moves) << " of them replicas)";
  StartMigrations(plan.moves, absl::StrCat("automatic rebalance at step ", step));
}

void ClusterActor::OnCatalogEvent(const CatalogEvent& event) {
  switch (event.kind) {
    case CatalogEvent::Kind::kCommitted:
      if (metrics_.checkpoints_committed != nullptr) metrics_.checkpoints_committed->Increment();
      ++checkpoints_committed_;
      if (event.id > latest_checkpoint_) {
        latest_checkpoint_ = event.id;
        latest_checkpoint_step_ = event.step;
      }
      if (checkpoint_in_progress_ == event.id) checkpoint_in_progress_ = 0;
      MaybeAutoRebalance(event.id, event.step);
      if (!recovering_) AdmitWaitingHosts();
      MaybeAutoCheckpoint();  // not while the rebalance's restore runs: the restore asks again
      return;
    case CatalogEvent::Kind::kFailed:
      if (metrics_.checkpoints_failed != nullptr) metrics_.checkpoints_failed->Increment();
      SY_LOG(WARNING) << "checkpoint " << event.id << " failed: " << event.status;
      if (checkpoint_in_progress_ == event.id) checkpoint_in_progress_ = 0;
      if (event.status.code() != absl::StatusCode::kCancelled) MaybeAutoCheckpoint();  // not while shutting down
      return;
    case CatalogEvent::Kind::kRestored:
      SY_LOG(INFO) << "checkpoint " << event.id << " restored (step " << event.step << ")";
      recovering_ = false;
      phase_ = "training";
      step_ = event.step;
      auto_checkpoint_target_ = event.step;  // the replay passes the later boundaries again
      RollbackTrainers(event.step, event.id);
      if (pending_restore_) {
        capnp::MallocMessageBuilder b;
        cluster::InitBody<proto::admin::AdminReply>(b, proto::MessageKind::ADMIN, table_.epoch()).setCheckpointId(event.id);
        pending_restore_->Reply(b);
        pending_restore_.reset();
      }
      MaybeAutoCheckpoint();
      return;
    case CatalogEvent::Kind::kRestoreFailed:
      SY_LOG(ERROR) << "restore of checkpoint " << event.id << " failed: " << event.status;
      recovering_ = false;
      trainers_awaiting_rollback_.clear();  // no rollback will come
      phase_ = absl::StrCat("degraded: restore of checkpoint ", event.id, " failed");
      // Some actors may hold the checkpoint's state and others not: nothing consistent to train on.
      StopTrainers(absl::StrCat("restore of checkpoint ", event.id, " failed: ", event.status.message()));
      if (pending_restore_) {
        pending_restore_->Fail(event.status);
        pending_restore_.reset();
      }
      return;
  }
}

void ClusterActor::HoldTrainersUntilRollback() {
  ++restore_generation_;
  for (const NodeInfo& trainer : membership_.Nodes(NodeRole::kTrainer)) {
    if (trainer.alive) trainers_awaiting_rollback_.insert(trainer.id);
  }
}

void ClusterActor::StopTrainers(const std::string& reason) {
  for (const NodeInfo& trainer : membership_.Nodes(NodeRole::kTrainer)) {
    if (!trainer.alive) continue;
    capnp::MallocMessageBuilder b;
    auto req = cluster::InitBody<proto::coordinator::TrainerControlRequest>(b, proto::MessageKind::TRAINER_CONTROL, table_.epoch());
    req.setEpoch(table_.epoch());
    req.setStop();
    req.setReason(reason);
    rpc_->CallAsync(AddressOf(trainer.id), b, {}, absl::Now() + options_.call_timeout,
                    [id = trainer.id](absl::StatusOr<transport::DecodedMessage> reply) {
                      if (!reply.ok()) SY_LOG(WARNING) << "stop of trainer " << id << ": " << reply.status();
                    });
  }
}

void ClusterActor::RollbackTrainers(uint64_t step, uint64_t checkpoint_id) {
  std::vector<std::string> alive;  // the live trainers, in rank order: they split the micro-batches
  for (const NodeInfo& trainer : membership_.Nodes(NodeRole::kTrainer)) {
    if (trainer.alive) alive.push_back(trainer.id);
  }
  for (auto it = trainers_awaiting_rollback_.begin(); it != trainers_awaiting_rollback_.end();) {
    // One that left meanwhile gets no order: nothing to wait for.
    it = std::find(alive.begin(), alive.end(), *it) == alive.end() ? trainers_awaiting_rollback_.erase(it) : ++it;
  }
  for (const std::string& trainer : alive) {
    capnp::MallocMessageBuilder b;
    auto req = cluster::InitBody<proto::coordinator::TrainerControlRequest>(b, proto::MessageKind::TRAINER_CONTROL, table_.epoch());
    req.setEpoch(table_.epoch());
    auto rollback = req.initRollback();
    rollback.setStep(step);
    rollback.setCheckpointId(checkpoint_id);
    auto ids = rollback.initTrainers(static_cast<unsigned>(alive.size()));
    for (size_t i = 0; i < alive.size(); ++i) ids.set(static_cast<unsigned>(i), alive[i]);
    std::weak_ptr<ClusterActor> self = std::static_pointer_cast<ClusterActor>(shared_from_this());
    rpc_->CallAsync(AddressOf(trainer), b, {}, absl::Now() + options_.call_timeout,
                    [id = trainer, self, generation = restore_generation_](
                        absl::StatusOr<transport::DecodedMessage> reply) {
                      if (!reply.ok()) SY_LOG(WARNING) << "rollback of trainer " << id << ": " << reply.status();
                      if (auto actor = self.lock()) actor->Tell(RollbackAcked{id, generation});
                    });
  }
}

// ---------------------------------------------------------------- admin

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
  status.setLatestCheckpoint(latest_checkpoint_);
  status.setLatestCheckpointStep(latest_checkpoint_step_);
  status.setPhase(phase_);
  status.setCheckpointInProgress(checkpoint_in_progress_);
  status.setCheckpointInProgressStep(checkpoint_in_progress_ != 0 ? checkpoint_in_progress_step_ : 0);
  status.setPlacementReady(table_.initialized());
  status.setMaxOverMeanLoad(table_.initialized() ? MaxOverMean(loads_.HostLoads(table_)) : 0.0);
  status.setRecoveries(recoveries_);
  status.setCheckpointsCommitted(checkpoints_committed_);
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
  for (const cluster::ActorKey& a : options_.shape.Actors()) {
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
  if (checkpoint_in_progress_ != 0) {
    return responder.Fail(absl::FailedPreconditionError(
        absl::StrCat("checkpoint ", checkpoint_in_progress_, " is still being taken")));
  }
  if (recovering_) return responder.Fail(absl::UnavailableError("recovery in progress"));
  const uint64_t id = next_checkpoint_id_;
  StartCheckpoint(step_);
  capnp::MallocMessageBuilder b;
  cluster::InitBody<proto::admin::AdminReply>(b, proto::MessageKind::ADMIN, table_.epoch()).setCheckpointId(id);
  responder.Reply(b);
}

void ClusterActor::AdminRestore(uint64_t id, transport::Responder responder) {
  if (!table_.initialized()) {
    return responder.Fail(absl::FailedPreconditionError(absl::StrCat("no placement yet: ", phase_)));
  }
  if (recovering_ || pending_restore_) return responder.Fail(absl::UnavailableError("a restore is in progress"));
  AbortCheckpointInProgress(absl::StrCat("restore of checkpoint ", id));
  recovering_ = true;
  phase_ = "restoring";
  pending_restore_ = responder;
  auto verified = catalog_->Ask<CheckpointInfo>(QueryVerified{id}, absl::ToChronoNanoseconds(options_.call_timeout));
  HoldTrainersUntilRollback();
  Await<CheckpointInfo>(std::move(verified), [this, id](absl::StatusOr<CheckpointInfo> info) {
    if (!info.ok()) {
      trainers_awaiting_rollback_.clear();  // no rollback will come
      recovering_ = false;
      phase_ = "training";
      if (pending_restore_) pending_restore_->Fail(info.status());
      pending_restore_.reset();
      return;
    }
    table_.BumpEpoch();
    PlacementChanged();
    catalog_->Tell(RestoreCheckpoint{id, RestoreTargets(), table_.epoch()});
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

}  // namespace sy::coordinator
