// The ClusterActor and the nodes: register (and the initial placement once the
// expected hosts are in), heartbeats, failure detection (heartbeat timeouts, and
// dropped connections confirmed by a probe), placement queries and pushes, and the
// trainers' load reports (see cluster_actor.h).
#include <algorithm>
#include <chrono>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement_codec.h"
#include "services/coordinator/cluster_actor.h"

namespace sy::coordinator {

namespace {

// A register request, read and checked.
struct Registration {
  NodeInfo node;
  std::vector<cluster::ActorKey> held;  // actors the node holds already
  cluster::ModelShape shape;            // of the node's model
};

absl::StatusOr<Registration> ReadRegistration(const transport::DecodedMessage& message) {
  auto body = message.Body<proto::coordinator::RegisterRequest>();
  if (!body.ok()) return body.status();
  Registration r;
  NodeInfo& node = r.node;
  node.id = body->getNodeId().cStr();
  if (node.id != message.envelope().getSender().cStr()) {
    return absl::InvalidArgumentError(absl::StrCat("register: nodeId '", node.id, "' differs from the sender's id"));
  }
  switch (body->getRole()) {
    case proto::coordinator::Role::EXPERT_HOST:
      node.role = NodeRole::kHost;
      break;
    case proto::coordinator::Role::TRAINER:
      node.role = NodeRole::kTrainer;
      break;
    default:
      return absl::InvalidArgumentError("register: only hosts and trainers register");
  }
  node.endpoint = body->getEndpoint().cStr();
  node.device = body->getDevice().cStr();
  node.memory_bytes = body->getMemoryBytes();
  node.incarnation = body->getIncarnation();
  if (node.role == NodeRole::kHost && node.endpoint.empty()) {
    return absl::InvalidArgumentError("register: a host needs an endpoint");
  }
  for (auto ref : body->getActors()) {
    auto key = cluster::ActorKey::FromProto(ref);
    if (!key.ok()) return key.status();
    r.held.push_back(*key);
  }
  const auto shape = body->getShape();
  r.shape = {shape.getNumSwitchLayers(), shape.getNumExperts(), shape.getNumDenseShards()};
  return r;
}

}  // namespace

void ClusterActor::OnRegister(ClusterRequest& request) {
  absl::StatusOr<Registration> registration = ReadRegistration(request.message);
  if (!registration.ok()) return request.responder.Fail(registration.status());
  const NodeInfo& node = registration->node;
  std::vector<cluster::ActorKey>& held = registration->held;
  const std::string id = node.id;
  const NodeRole role = node.role;
  if (!model_.known() && options_.initial_placement) {
    AdoptShape(options_.initial_placement->shape, "--initial_placement");
  }
  if (absl::Status s = model_.Check(id, registration->shape); !s.ok()) {
    SY_LOG(WARNING) << s.message();
    return request.responder.Fail(s);
  }
  auto outcome = membership_.Register(node, Now(), NowUnixMs());
  if (!outcome.ok()) return request.responder.Fail(outcome.status());
  detector_.Forget(id);  // a probe of an earlier incarnation decides nothing now
  SY_LOG(INFO) << (role == NodeRole::kHost ? "host " : "trainer ") << id << " registered"
               << (outcome->restarted ? " (restarted)" : "");
  if (!model_.known()) AdoptShape(registration->shape, id);
  if (role == NodeRole::kTrainer) {
    a_trainer_finished_ = false;
    trainer_routes_[id] = request.message.message().address.peer;
  }
  if (role == NodeRole::kTrainer && finished_at_step_) {
    finished_at_step_.reset();  // training goes on (e.g. resumed from a checkpoint)
    unfinished_live_moves_.clear();
    checkpoint_due_ = true;
  }

  if (role == NodeRole::kHost) {
    auto known = endpoints_.find(id);
    if (known == endpoints_.end() || known->second != node.endpoint) {
      absl::Status connected = rpc_->transport().Connect(HostPeer(id, node.endpoint), node.endpoint);
      if (!connected.ok() && connected.code() != absl::StatusCode::kAlreadyExists) {
        return request.responder.Fail(connected);
      }
      if (known != endpoints_.end()) {
        // Restarted on another endpoint: the old connection leads nowhere; close it, so a
        // host restarting on fresh ports does not leave a socket behind each time.
        absl::Status closed = rpc_->transport().Disconnect(HostPeer(id, known->second));
        SY_LOG(INFO) << "host " << id << " moved from " << known->second << " to " << node.endpoint
                     << "; old connection " << (closed.ok() ? "closed" : closed.ToString());
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

void ClusterActor::AdoptShape(const cluster::ModelShape& shape, const std::string& source) {
  model_.Adopt(shape, source);
  table_ = cluster::PlacementTable(shape, options_.redundancy);
  SY_LOG(INFO) << "the model has " << ShapeToString(shape) << " (from " << source << ")";
}

void ClusterActor::MaybeInitializePlacement() {
  if (!model_.known()) {
    phase_ = "waiting for the model's shape (no node registered yet)";
    return;
  }
  const std::vector<std::string> hosts = AliveHosts();
  if (hosts.size() < options_.expected_hosts) {
    phase_ = absl::StrCat("waiting for hosts (", hosts.size(), " of ", options_.expected_hosts, ")");
    return;
  }
  const absl::Status s = options_.initial_placement ? PlaceInitially(*options_.initial_placement, hosts, table_)
                                                    : table_.Initialize(hosts);
  if (absl::IsUnavailable(s)) {
    phase_ = std::string(s.message());
    return;
  }
  if (!s.ok()) {
    SY_LOG(ERROR) << "placement: " << s;
    return;
  }
  phase_ = "training";
  SY_LOG(INFO) << "initial placement over " << table_.hosts().size() << " hosts"
               << (options_.initial_placement ? " (--initial_placement)" : "") << ", epoch " << table_.epoch();
  PlacementChanged(TablePush::kInitial);
}

void ClusterActor::OnHeartbeat(ClusterRequest& request) {
  auto body = request.message.Body<proto::coordinator::HeartbeatRequest>();
  if (!body.ok()) return request.responder.Fail(body.status());
  const std::string id = body->getNodeId().cStr();
  absl::Status s = membership_.Heartbeat(id, body->getIncarnation(), body->getStep(), body->getEpoch(),
                                         body->getDraining(), Now(), NowUnixMs());
  capnp::MallocMessageBuilder b;
  auto reply = cluster::InitBody<proto::coordinator::HeartbeatReply>(b, proto::MessageKind::HEARTBEAT, table_.epoch());
  reply.setEpoch(HeartbeatEpoch());
  reply.setReregister(s.code() == absl::StatusCode::kNotFound);
  // Its actors were re-placed: it must not serve its old epoch's state again.
  reply.setFenced(membership_.DeclaredFailed(id, body->getIncarnation()));
  request.responder.Reply(b);
  if (!s.ok()) return;
  const NodeInfo* node = membership_.Find(id);
  if (node != nullptr && node->role == NodeRole::kTrainer) trainer_routes_[id] = request.message.message().address.peer;
  if (node != nullptr && node->role == NodeRole::kTrainer && node->draining) {
    // A trainer's last heartbeat says it finished: it leaves, it did not fail.
    const uint64_t finished = node->step;
    membership_.MarkFailed(id);
    a_trainer_finished_ = true;
    SY_LOG(INFO) << "trainer " << id << " finished at step " << finished << " and left";
    if (live_moves_) {  // no more progress will be seen: no fallback either
      SY_LOG(INFO) << "the live moves after step " << live_moves_->last_source_step
                   << " are no longer followed: training is over";
      unfinished_live_moves_ = table_.live_moves();
      live_moves_.reset();
      table_.ForgetLiveMoves();
      phase_ = "training";
    }
    if (membership_.AliveCount(NodeRole::kTrainer) == 0) {
      // Training is over: the hosts stay at this step, so a later checkpoint would wait
      // in vain (the CheckpointActor abandons one being taken beyond it).
      finished_at_step_ = finished;
    }
    return;
  }
  const uint64_t step = membership_.MaxStep(NodeRole::kHost);
  if (step > step_) {
    step_ = step;
    checkpoint_due_ = true;
  }
  OnProgressForLiveMoves();
}

void ClusterActor::OnPlacement(ClusterRequest& request) {
  auto body = request.message.Body<proto::coordinator::PlacementRequest>();
  if (!body.ok()) return request.responder.Fail(body.status());
  switch (body->which()) {
    case proto::coordinator::PlacementRequest::GET:
      break;
    case proto::coordinator::PlacementRequest::UPDATE:
      return request.responder.Fail(absl::InvalidArgumentError("only the coordinator publishes placement updates"));
    default:
      return request.responder.Fail(absl::InvalidArgumentError("unknown placement request"));
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
  const cluster::ModelShape& shape = table_.shape();  // all zero (no expert) until a node registered
  std::vector<ExpertTokens> loads;
  for (auto l : body->getLoads()) {
    const auto key = l.getExpert();
    if (key.getSwitchLayer() >= shape.num_switch_layers || key.getExpert() >= shape.num_experts) {
      return request.responder.Fail(absl::InvalidArgumentError(absl::StrCat(
          "load report: no expert (switch layer ", key.getSwitchLayer(), ", expert ", key.getExpert(),
          ") in this model")));
    }
    loads.push_back({cluster::ActorKey::Expert(key.getSwitchLayer(), key.getExpert()), l.getTokens(), l.getDropped()});
  }
  trainer_step_ = std::max(trainer_step_, body->getStep());
  OnProgressForLiveMoves();
  host_load_series_.Report(body->getTrainer().cStr(), body->getStep(), loads, table_);
  loads_.Report(body->getTrainer().cStr(), body->getStep(), loads,
                std::max<size_t>(1, membership_.AliveCount(NodeRole::kTrainer)));
  if (options_.live_moves) MaybeAutoRebalance(std::nullopt, body->getStep());
  capnp::MallocMessageBuilder b;
  cluster::InitBody<proto::coordinator::LoadReportReply>(b, proto::MessageKind::LOAD_REPORT, table_.epoch())
      .setEpoch(table_.epoch());
  request.responder.Reply(b);
}

void ClusterActor::OnTick() {
  actor::Duration paused{};
  for (const NodeInfo& failed : membership_.Expire(Now(), &paused)) {
    detector_.Forget(failed.id);
    if (failed.role == NodeRole::kHost) {
      OnHostFailed(failed.id, "missed heartbeats");
    } else {
      OnTrainerFailed(failed.id);
    }
  }
  if (paused > actor::Duration::zero()) {
    SY_LOG(WARNING) << "the coordinator did not run for "
                    << std::chrono::duration_cast<std::chrono::milliseconds>(paused).count()
                    << " ms (its process was stopped or starved): the silence was its own, so no node is declared "
                       "failed for it; every heartbeat deadline starts again now";
  }
  ForgetLongDeadNodes();
  CheckLiveMoveProgress();
  After(absl::ToChronoNanoseconds(std::max(absl::Milliseconds(10), options_.heartbeat_timeout / 4)),
        [this] {
          OnTick();
          EndTurn();
        });
}

void ClusterActor::ForgetLongDeadNodes() {
  const auto listed = [this](const NodeInfo& node) {
    return std::find(table_.hosts().begin(), table_.hosts().end(), node.id) != table_.hosts().end() ||
           !table_.ActorsOn(node.id).empty();
  };
  for (const NodeInfo& forgotten :
       membership_.ForgetDead(Now(), absl::ToChronoNanoseconds(options_.forget_dead_after), listed)) {
    detector_.Forget(forgotten.id);
    trainer_routes_.erase(forgotten.id);
    SY_LOG(INFO) << (forgotten.role == NodeRole::kHost ? "host " : "trainer ") << forgotten.id
                 << " forgotten: dead and silent for over " << absl::FormatDuration(options_.forget_dead_after)
                 << " (incarnation " << forgotten.incarnation << ", last step " << forgotten.step << ")";
  }
}

void ClusterActor::OnConnectionLost(const HostConnectionLost& lost) {
  for (const auto& [host, endpoint] : endpoints_) {
    if (HostPeer(host, endpoint) != lost.peer) continue;
    const NodeInfo* node = membership_.Find(host);
    if (node == nullptr || node->role != NodeRole::kHost || !node->alive) return;  // not a live host
    if (!detector_.Suspect(host, node->incarnation)) return;  // already being probed
    SY_LOG(INFO) << "host " << host << " disconnected; probing it";
    capnp::MallocMessageBuilder b;
    b.initRoot<proto::Envelope>().setKind(proto::MessageKind::PING);
    std::weak_ptr<ClusterActor> self = std::static_pointer_cast<ClusterActor>(shared_from_this());
    rpc_->CallAsync(AddressOf(host), b, {}, absl::Now() + detector_.probe_deadline(),
                    [self, host = host, incarnation = node->incarnation](
                        absl::StatusOr<transport::DecodedMessage> reply) {
                      if (auto actor = self.lock()) actor->Tell(HostProbed{host, incarnation, reply.ok()});
                    });
    return;
  }
}

void ClusterActor::OnHostProbed(const HostProbed& probed) {
  if (!detector_.suspected(probed.host)) return;  // decided otherwise meanwhile
  const std::optional<std::string> dead = detector_.ProbeEnded(probed.host, probed.incarnation, probed.answered);
  if (probed.answered) SY_LOG(INFO) << "host " << probed.host << " answered its probe: alive";
  if (!dead.has_value()) return;
  const NodeInfo* node = membership_.Find(probed.host);
  if (node == nullptr || !node->alive || node->incarnation != probed.incarnation) return;
  SY_LOG(WARNING) << *dead;
  membership_.MarkFailed(probed.host);
  OnHostFailed(probed.host, "disconnected, probe unanswered");
}

void ClusterActor::CloseDeadHostConnection(const std::string& host) {
  auto endpoint = endpoints_.find(host);
  if (endpoint == endpoints_.end() || !table_.ActorsOn(host).empty()) return;
  absl::Status closed = rpc_->transport().Disconnect(HostPeer(host, endpoint->second));
  SY_LOG(INFO) << "host " << host << " is dead: connection to " << endpoint->second << " "
               << (closed.ok() ? "closed" : closed.ToString());
  endpoints_.erase(endpoint);
}

}  // namespace sy::coordinator
