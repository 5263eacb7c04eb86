// The ClusterActor's core: construction, the saved placement, message dispatch, the
// progress told to the CheckpointActor, and addressing (see cluster_actor.h).
#include "services/coordinator/cluster_actor.h"

#include <algorithm>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "common/transport/refusals.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement_codec.h"

namespace sy::coordinator {
namespace {

constexpr char kPlacementMeta[] = "placement";
// What a registration stores is small: an endpoint like tcp://10.1.2.3:5555, a device like cuda:7.
constexpr size_t kMaxEndpointBytes = 256;
constexpr size_t kMaxDeviceBytes = 64;

}  // namespace

ClusterActor::ClusterActor(actor::Executor& executor, const CoordinatorOptions& options, transport::RpcNode* rpc,
                           SwitchableFaultTransport* own_transport, CheckpointStore* store,
                           std::shared_ptr<CheckpointActor> checkpoints, metrics::Registry* registry)
    : Actor(executor, "coordinator-cluster", registry),
      options_(options),
      registry_(registry),
      rpc_(rpc),
      own_transport_(own_transport),
      store_(store),
      checkpoints_(std::move(checkpoints)),
      membership_(absl::ToChronoNanoseconds(options.heartbeat_timeout)),
      detector_(options.probe_deadline),
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
        } else if constexpr (std::is_same_v<T, HostConnectionLost>) {
          OnConnectionLost(m);
        } else if constexpr (std::is_same_v<T, HostProbed>) {
          OnHostProbed(m);
        } else if constexpr (std::is_same_v<T, FailoverAnswer>) {
          OnFailoverAnswer(m);
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
  progress.ready = table_.initialized() && !recovering_ && !live_moves_;  // a live move's actors are between hosts
  for (const auto& [actor, hosts] : table_.entries()) progress.stream_from[actor] = AddressOf(hosts.front());
  for (const cluster::LiveMove& m : unfinished_live_moves_) {
    if (!m.move.replicate) progress.stream_from[m.move.actor] = AddressOf(m.move.from);
  }
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

void ClusterActor::PlacementChanged(TablePush kind) {
  if (!table_.initialized()) return;
  SaveTable();
  for (const NodeInfo& host : membership_.Nodes(NodeRole::kHost)) {
    if (!host.alive) continue;
    PushTable(host.id, kind, [id = host.id](absl::StatusOr<transport::DecodedMessage> reply) {
      if (!reply.ok()) SY_LOG(WARNING) << "placement update to " << id << ": " << reply.status();
    });
  }
}

void ClusterActor::SaveTable() {
  if (absl::Status s = store_->PutMeta(kPlacementMeta, cluster::SerializeTable(table_, endpoints_)); !s.ok()) {
    StorageFailed(absl::StrCat("placement epoch ", table_.epoch(), " could not be saved"), s);
  }
}

void ClusterActor::PushTable(const std::string& host, TablePush kind,
                             std::function<void(absl::StatusOr<transport::DecodedMessage>)> done) {
  capnp::MallocMessageBuilder b;
  auto req = cluster::InitBody<proto::coordinator::PlacementRequest>(b, proto::MessageKind::PLACEMENT, table_.epoch());
  cluster::TableToProto(table_, endpoints_, req.initUpdate());
  req.setKnownEpoch(table_.epoch());
  req.setDropOpenStep(kind == TablePush::kFailover);
  req.setInitial(kind == TablePush::kInitial);
  rpc_->CallAsync(AddressOf(host), b, {}, absl::Now() + options_.call_timeout, std::move(done));
}

void ClusterActor::OnRequest(ClusterRequest& request) {
  switch (request.message.envelope().getKind()) {
    case proto::MessageKind::REGISTER:
      if (absl::Status s = AdmitRegistration(request.message); !s.ok()) return request.responder.Fail(s);
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

absl::Status ClusterActor::AdmitRegistration(const transport::DecodedMessage& message) const {
  auto body = message.Body<proto::coordinator::RegisterRequest>();
  if (!body.ok()) return body.status();
  const std::string id = body->getNodeId().cStr();
  if (body->getEndpoint().size() > kMaxEndpointBytes || body->getDevice().size() > kMaxDeviceBytes) {
    return transport::Refuse(registry_, "oversized", absl::InvalidArgumentError(absl::StrCat(
        "register of '", id, "': an endpoint of ", body->getEndpoint().size(), " bytes and a device of ",
        body->getDevice().size(), " bytes (at most ", kMaxEndpointBytes, " and ", kMaxDeviceBytes, ")")));
  }
  if (membership_.Find(id) != nullptr) return absl::OkStatus();
  const size_t known = membership_.Nodes(NodeRole::kHost).size() + membership_.Nodes(NodeRole::kTrainer).size();
  if (known < options_.max_nodes) return absl::OkStatus();
  return transport::Refuse(registry_, "capacity", absl::ResourceExhaustedError(absl::StrCat(
      "register of '", id, "' refused: the coordinator knows ", known, " nodes, its --max_nodes")));
}

transport::Address ClusterActor::AddressOf(const std::string& node) const {
  const NodeInfo* info = membership_.Find(node);
  if (info != nullptr && info->role == NodeRole::kTrainer) {
    auto route = trainer_routes_.find(node);
    return {route != trainer_routes_.end() ? route->second : node, transport::Route::kBound};
  }
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

std::string ClusterActor::HostPeer(const std::string& host, const std::string& endpoint) {
  return absl::StrCat(host, "@", endpoint);
}

int64_t ClusterActor::NowUnixMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace sy::coordinator
