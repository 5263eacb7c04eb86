// Registration, heartbeats, table fetches and load reports (see coordinator_link.h).
#include "services/cluster/coordinator_link.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/fnv1a.h"
#include "common/base/nested_size.h"
#include "common/base/thread_name.h"
#include "common/log/log.h"
#include "common/transport/zmq_transport.h"
#include "proto/checkpoint.capnp.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/state_chunks.h"
#include "services/cluster/switch_layers.h"

namespace sy::cluster {
namespace {

constexpr char kCoordinator[] = "coordinator";
const transport::Address kToCoordinator{kCoordinator, transport::Route::kConnected};

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorLink>> CoordinatorLink::Start(const CoordinatorLinkOptions& options,
                                                                        std::function<uint64_t()> step,
                                                                        transport::RpcNode::Handler handler) {
  if (options.node_id.empty() || options.coordinator.empty()) {
    return absl::InvalidArgumentError("coordinator link needs a node id and the coordinator's endpoint");
  }
  if (options.shape.num_switch_layers == 0 || options.shape.num_experts == 0) {
    return absl::InvalidArgumentError("coordinator link needs the model's shape (Switch layers and experts)");
  }
  std::unique_ptr<CoordinatorLink> link(new CoordinatorLink());
  link->options_ = options;
  link->step_ = std::move(step);
  // Grows with every process start (and fencing), so the coordinator tells a restart from a duplicate.
  link->incarnation_ = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  transport::ZmqOptions zmq;
  zmq.node_id = options.node_id;
  zmq.curve = options.curve;
  absl::StatusOr<std::unique_ptr<transport::ZmqTransport>> zt = transport::ZmqTransport::Create(zmq);
  if (!zt.ok()) return zt.status();
  if (absl::Status s = (*zt)->Connect(kCoordinator, options.coordinator); !s.ok()) return s;
  if (!handler) {
    handler = [](transport::DecodedMessage, transport::Responder responder) {
      responder.Fail(absl::UnimplementedError("this node answers no coordinator calls on its coordinator link"));
    };
  }
  transport::RpcOptions rpc_options;
  rpc_options.attempt_timeout = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<transport::RpcNode>> rpc =
      transport::RpcNode::Create(*std::move(zt), rpc_options, std::move(handler));
  if (!rpc.ok()) return rpc.status();
  link->rpc_ = *std::move(rpc);
  if (absl::Status s = link->Register(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(options.node_id, ": registering with the coordinator at ",
                                               options.coordinator, ": ", s.message()));
  }
  link->heartbeat_ = std::thread([self = link.get()] {
    base::NameThisThread("sy-heartbeat");
    self->HeartbeatLoop();
  });
  return link;
}

CoordinatorLink::~CoordinatorLink() {
  if (!stop_.HasBeenNotified()) stop_.Notify();  // Leave may have stopped the heartbeat already
  // Closing first ends a heartbeat waiting on a coordinator that is gone (stopped
  // with the rest of the cluster) at once instead of at its call deadline.
  if (rpc_ != nullptr) rpc_->Close();
  if (heartbeat_.joinable()) heartbeat_.join();
}

absl::StatusOr<transport::DecodedMessage> CoordinatorLink::Call(capnp::MallocMessageBuilder& header) {
  return rpc_->Call(kToCoordinator, header, {}, absl::Now() + options_.call_timeout);
}

absl::Status CoordinatorLink::Register() {
  capnp::MallocMessageBuilder b;
  auto req = cluster::InitBody<proto::coordinator::RegisterRequest>(b, proto::MessageKind::REGISTER);
  req.setNodeId(options_.node_id);
  req.setRole(options_.is_host ? proto::coordinator::Role::EXPERT_HOST : proto::coordinator::Role::TRAINER);
  req.setEndpoint(options_.endpoint);
  req.setDevice("cpu");
  req.setIncarnation(incarnation_);
  auto shape = req.initShape();
  shape.setNumSwitchLayers(options_.shape.num_switch_layers);
  shape.setNumExperts(options_.shape.num_experts);
  shape.setNumDenseShards(options_.shape.num_dense_shards);
  const std::vector<cluster::ActorKey> held =
      options_.held_actors ? options_.held_actors() : std::vector<cluster::ActorKey>{};
  auto list = req.initActors(static_cast<unsigned>(held.size()));
  for (size_t i = 0; i < held.size(); ++i) held[i].ToProto(list[i]);
  absl::StatusOr<transport::DecodedMessage> reply = Call(b);
  if (!reply.ok()) return reply.status();
  auto body = reply->Body<proto::coordinator::RegisterReply>();
  if (!body.ok()) return body.status();
  epoch_->store(body->getEpoch());
  if (body->getHeartbeatIntervalMs() > 0) interval_ms_.store(body->getHeartbeatIntervalMs());
  return absl::OkStatus();
}

void CoordinatorLink::HeartbeatLoop() {
  while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(interval_ms_.load()))) {
    Heartbeat(step_ ? step_() : 0, false);
  }
}

void CoordinatorLink::Heartbeat(uint64_t step, bool leaving) {
  capnp::MallocMessageBuilder b;
  auto req = cluster::InitBody<proto::coordinator::HeartbeatRequest>(b, proto::MessageKind::HEARTBEAT);
  req.setNodeId(options_.node_id);
  req.setIncarnation(incarnation_);
  req.setEpoch(epoch_->load());
  req.setStep(step);
  req.setDraining(leaving);
  absl::StatusOr<transport::DecodedMessage> reply = Call(b);
  if (!reply.ok()) {
    if (stop_.HasBeenNotified() && absl::IsCancelled(reply.status())) return;  // closing
    SY_LOG(WARNING) << options_.node_id << ": heartbeat: " << reply.status();
    return;
  }
  auto body = reply->Body<proto::coordinator::HeartbeatReply>();
  if (!body.ok()) return;
  ++heartbeats_;
  if (body->getEpoch() > epoch_->load()) epoch_->store(body->getEpoch());
  if (body->getFenced() && !leaving) {
    SY_LOG(WARNING) << options_.node_id << ": the coordinator declared this node failed (placement epoch "
                    << epoch_->load() << "): joining again as a new node";
    if (options_.on_fenced) options_.on_fenced(epoch_->load());
    incarnation_ = std::max(incarnation_ + 1, static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())));
  }
  if (body->getReregister() && !leaving) {
    if (absl::Status s = Register(); !s.ok()) SY_LOG(WARNING) << options_.node_id << ": re-register: " << s;
  }
}

void CoordinatorLink::Leave(uint64_t step) {
  if (stop_.HasBeenNotified()) return;
  stop_.Notify();
  if (heartbeat_.joinable()) heartbeat_.join();
  Heartbeat(step, true);
  SY_LOG(INFO) << options_.node_id << ": told the coordinator it finished at step " << step;
}

absl::StatusOr<cluster::DecodedTable> CoordinatorLink::WaitForTable(absl::Duration timeout, uint64_t min_epoch) {
  const absl::Time give_up = absl::Now() + timeout;
  while (true) {
    capnp::MallocMessageBuilder b;
    cluster::InitBody<proto::coordinator::PlacementRequest>(b, proto::MessageKind::PLACEMENT).setGet();
    absl::StatusOr<transport::DecodedMessage> reply = Call(b);
    if (!reply.ok()) return reply.status();
    auto body = reply->Body<proto::coordinator::PlacementReply>();
    if (!body.ok()) return body.status();
    if (body->hasTable()) {
      absl::StatusOr<cluster::DecodedTable> table = cluster::TableFromProto(body->getTable());
      if (!table.ok()) return table.status();
      if (table->epoch > 0 && table->epoch >= min_epoch && table->entries.size() == table->shape.Actors().size()) {
        epoch_->store(table->epoch);
        return table;
      }
    }
    if (absl::Now() > give_up && min_epoch > 0) {
      return absl::DeadlineExceededError(absl::StrCat("the coordinator's table did not reach epoch ", min_epoch,
                                                      " with every actor placed within ",
                                                      absl::FormatDuration(timeout)));
    }
    if (absl::Now() > give_up) {
      return absl::DeadlineExceededError(
          absl::StrCat("the coordinator placed no actors within ", absl::FormatDuration(timeout),
                       " (are all expected hosts registered?)"));
    }
    if (stop_.WaitForNotificationWithTimeout(absl::Milliseconds(50))) return absl::CancelledError("link closed");
  }
}

absl::Status CoordinatorLink::ReportLoad(uint64_t step, const std::vector<std::vector<int64_t>>& tokens) {
  if (load_report_in_flight_->exchange(true)) {
    return absl::ResourceExhaustedError(absl::StrCat("the previous load report is still unanswered: step ", step,
                                                     "'s is dropped (load is advice)"));
  }
  capnp::MallocMessageBuilder b;
  auto req = cluster::InitBody<proto::coordinator::LoadReportRequest>(b, proto::MessageKind::LOAD_REPORT);
  req.setTrainer(options_.node_id);
  req.setStep(step);
  auto list = req.initLoads(static_cast<unsigned>(NestedSize(tokens)));
  size_t i = 0;
  for (size_t s = 0; s < tokens.size(); ++s) {
    for (size_t e = 0; e < tokens[s].size(); ++e, ++i) {
      list[i].initExpert().setSwitchLayer(static_cast<uint32_t>(s));
      list[i].getExpert().setExpert(static_cast<uint32_t>(e));
      list[i].setTokens(static_cast<uint64_t>(tokens[s][e]));
    }
  }
  // The answer may come after this link is gone: the callback holds only shared state.
  rpc_->CallAsync(kToCoordinator, b, {}, absl::Now() + options_.call_timeout,
                  [in_flight = load_report_in_flight_, epoch = epoch_, node = options_.node_id,
                   step](absl::StatusOr<transport::DecodedMessage> reply) {
                    in_flight->store(false);
                    if (!reply.ok()) {
                      if (!absl::IsCancelled(reply.status())) {
                        SY_LOG(WARNING) << node << ": load report of step " << step << ": " << reply.status();
                      }
                      return;
                    }
                    auto body = reply->Body<proto::coordinator::LoadReportReply>();
                    if (body.ok() && body->getEpoch() > epoch->load()) epoch->store(body->getEpoch());
                  });
  return absl::OkStatus();
}

void CoordinatorLink::StreamCheckpoint(uint64_t checkpoint_id, uint64_t step, const cluster::ActorKey& actor,
                                       std::shared_ptr<const std::string> state, uint64_t chunk_bytes,
                                       std::function<void(absl::Status, uint32_t chunks)> done) {
  const uint64_t checksum = ChecksumOf(*state);
  const std::vector<StateChunk> chunks = SplitState(*state, chunk_bytes);
  const uint32_t count = chunks.front().count;
  const ChunkAcks acks(count, [done = std::move(done), count](absl::Status s) { done(s, s.ok() ? count : 0); });
  for (const StateChunk& c : chunks) {
    capnp::MallocMessageBuilder b;
    auto chunk = cluster::InitBody<proto::checkpoint::ChunkRequest>(b, proto::MessageKind::CHECKPOINT_CHUNK);
    chunk.setCheckpointId(checkpoint_id);
    chunk.setStep(step);
    actor.ToProto(chunk.initActor());
    chunk.setHost(options_.node_id);
    FillChunkIn(c, step, state->size(), checksum, chunk.initChunk());
    std::vector<transport::Frame> frames = cluster::AttachState(b, c.bytes);
    rpc_->CallAsync(kToCoordinator, b, std::move(frames), absl::Now() + options_.call_timeout,
                    [acks, state](absl::StatusOr<transport::DecodedMessage> r) { acks.Ack(r.status()); });
  }
}

cluster::ModelShape ModelShapeOf(const gpu::ModelConfig& config) {
  return {static_cast<uint32_t>(SwitchLayerCount(config)), static_cast<uint32_t>(config.experts),
          static_cast<uint32_t>(DenseShardParams(gpu::ParamInfos(config)).size())};
}

absl::StatusOr<std::unique_ptr<CoordinatorPlacement>> CoordinatorPlacement::Create(
    const gpu::ModelConfig& config, int num_dense_shards, int num_hosts, const cluster::DecodedTable& table) {
  const int switch_layers = SwitchLayerCount(config);
  if (table.shape.num_switch_layers != static_cast<uint32_t>(switch_layers) ||
      table.shape.num_experts != static_cast<uint32_t>(config.experts) ||
      table.shape.num_dense_shards != static_cast<uint32_t>(num_dense_shards)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the coordinator's table is for ", table.shape.num_switch_layers, " Switch layers x ", table.shape.num_experts,
        " experts and ", table.shape.num_dense_shards, " dense shards; this model has ", switch_layers, " x ",
        config.experts, " and ", num_dense_shards));
  }
  std::unique_ptr<CoordinatorPlacement> p(new CoordinatorPlacement());
  p->num_hosts_ = num_hosts;
  p->epoch_ = table.epoch;
  p->config_ = config;
  p->switch_layers_ = switch_layers;
  p->num_dense_shards_ = num_dense_shards;
  if (absl::Status s = p->Fill(table.entries, &p->now_); !s.ok()) return s;
  if (table.live_moves.empty()) return p;
  // Undo the moves (last first) to get the holders up to their boundary.
  std::map<ActorKey, std::vector<std::string>> before = table.entries;
  for (auto live = table.live_moves.rbegin(); live != table.live_moves.rend(); ++live) {
    const Move& m = live->move;
    auto entry = before.find(m.actor);
    auto to = entry == before.end() ? std::vector<std::string>::iterator()
                                    : std::find(entry->second.begin(), entry->second.end(), m.to);
    if (entry == before.end() || to == entry->second.end() || live->last_source_step == 0) {
      return absl::InvalidArgumentError(absl::StrCat("placement epoch ", table.epoch, ": live move of ",
                                                     m.actor.ToString(), " to ", m.to, " does not match the table"));
    }
    if (m.replicate) {
      entry->second.erase(to);
    } else {
      *to = m.from;
    }
    p->live_after_ = std::max(p->live_after_, live->last_source_step);
  }
  if (absl::Status s = p->Fill(before, &p->before_); !s.ok()) return s;
  return p;
}

absl::Status CoordinatorPlacement::Fill(const std::map<ActorKey, std::vector<std::string>>& entries,
                                        Holders* out) const {
  out->experts.assign(static_cast<size_t>(switch_layers_) * config_.experts, {});
  out->shards.assign(static_cast<size_t>(num_dense_shards_), -1);
  for (const auto& [actor, hosts] : entries) {
    if (hosts.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("the coordinator places ", actor.ToString(), " on no host"));
    }
    std::vector<int> indices;
    for (const std::string& host : hosts) {
      int index = -1;
      if (!absl::StartsWith(host, "host-") || !absl::SimpleAtoi(absl::string_view(host).substr(5), &index) ||
          index < 0 || index >= num_hosts_) {
        return absl::InvalidArgumentError(absl::StrCat("the coordinator places ", actor.ToString(), " on '", host,
                                                       "', not one of host-0..host-", num_hosts_ - 1));
      }
      if (std::find(indices.begin(), indices.end(), index) != indices.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("the coordinator places two replicas of ", actor.ToString(), " on ", host));
      }
      indices.push_back(index);
    }
    if (actor.dense) {
      if (actor.shard >= out->shards.size()) return absl::InvalidArgumentError("dense shard out of range");
      out->shards[actor.shard] = indices[0];
    } else {
      if (actor.switch_layer >= static_cast<uint32_t>(switch_layers_) ||
          actor.expert >= static_cast<uint32_t>(config_.experts)) {
        return absl::InvalidArgumentError(absl::StrCat("expert out of range: ", actor.ToString()));
      }
      out->experts[static_cast<size_t>(actor.switch_layer) * config_.experts + actor.expert] = std::move(indices);
    }
  }
  for (const std::vector<int>& hosts : out->experts) {
    if (hosts.empty()) return absl::InvalidArgumentError("the coordinator's table misses an expert");
  }
  for (int h : out->shards) {
    if (h < 0) return absl::InvalidArgumentError("the coordinator's table misses a dense shard");
  }
  return absl::OkStatus();
}

size_t CoordinatorPlacement::ExpertIndex(int layer, int expert) const {
  return static_cast<size_t>(SwitchLayerOf(layer, config_).value()) * config_.experts + expert;
}

int CoordinatorPlacement::HostOfExpert(int layer, int expert) const {
  return now_.experts[ExpertIndex(layer, expert)][0];
}

std::vector<int> CoordinatorPlacement::ExpertReplicas(int layer, int expert) const {
  return now_.experts[ExpertIndex(layer, expert)];
}

int CoordinatorPlacement::HostOfDenseShard(int shard) const { return now_.shards[static_cast<size_t>(shard)]; }

std::vector<int> CoordinatorPlacement::ExpertReplicasAt(uint64_t step, int layer, int expert) const {
  return ServingStep(step).experts[ExpertIndex(layer, expert)];
}

int CoordinatorPlacement::HostOfDenseShardAt(uint64_t step, int shard) const {
  return ServingStep(step).shards[static_cast<size_t>(shard)];
}

}  // namespace sy::cluster
