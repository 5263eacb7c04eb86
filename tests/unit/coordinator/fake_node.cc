// Fake host and trainer speaking the coordinator protocol (see fake_node.h).
#include "tests/unit/coordinator/fake_node.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/fnv1a.h"
#include "common/transport/zmq_transport.h"
#include "proto/admin.capnp.h"
#include "proto/checkpoint.capnp.h"
#include "proto/coordinator.capnp.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement_codec.h"

namespace sy::coordinator::testing {
namespace {

constexpr char kCoordinator[] = "coordinator";
const transport::Address kToCoordinator{kCoordinator, transport::Route::kConnected};

absl::Time Deadline() { return absl::Now() + absl::Seconds(10); }

// A register request from `id` in `role` whose model has `shape`.
proto::coordinator::RegisterRequest::Builder InitRegister(capnp::MallocMessageBuilder& b, const std::string& id,
                                                          proto::coordinator::Role role,
                                                          const cluster::ModelShape& shape) {
  auto req = cluster::InitBody<proto::coordinator::RegisterRequest>(b, proto::MessageKind::REGISTER);
  req.setNodeId(id);
  req.setRole(role);
  auto model = req.initShape();
  model.setNumSwitchLayers(shape.num_switch_layers);
  model.setNumExperts(shape.num_experts);
  model.setNumDenseShards(shape.num_dense_shards);
  return req;
}

absl::StatusOr<std::unique_ptr<transport::RpcNode>> MakeNode(const std::string& id, const std::string& coordinator,
                                                             bool bind, std::string* endpoint,
                                                             transport::RpcNode::Handler handler,
                                                             const transport::EnvelopeLimits& limits = {}) {
  transport::ZmqOptions options;
  options.node_id = id;
  auto zmq = transport::ZmqTransport::Create(options);
  if (!zmq.ok()) return zmq.status();
  if (bind) {
    auto bound = (*zmq)->Bind("tcp://127.0.0.1:*");
    if (!bound.ok()) return bound.status();
    *endpoint = *bound;
  }
  if (absl::Status s = (*zmq)->Connect(kCoordinator, coordinator); !s.ok()) return s;
  transport::RpcOptions rpc_options;
  rpc_options.limits = limits;
  return transport::RpcNode::Create(*std::move(zmq), rpc_options, std::move(handler));
}

}  // namespace

std::string FakeState(const cluster::ActorKey& actor, uint64_t version, size_t bytes) {
  std::string s(bytes / 4 * 4, '\0');
  const uint64_t salt = (actor.dense ? 1000 + actor.shard : actor.switch_layer * 100 + actor.expert) * 7919 + version * 104729;
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>((i * 131 + salt) >> 3);
  return s;
}

absl::StatusOr<std::unique_ptr<FakeHost>> FakeHost::Start(const std::string& id, const std::string& coordinator,
                                                          uint64_t incarnation, const cluster::ModelShape& shape,
                                                          const transport::EnvelopeLimits& limits) {
  std::unique_ptr<FakeHost> host(new FakeHost());
  host->id_ = id;
  host->incarnation_ = incarnation;
  host->shape_ = shape;
  FakeHost* self = host.get();
  auto rpc = MakeNode(id, coordinator, /*bind=*/true, &host->endpoint_,
                      [self](transport::DecodedMessage m, transport::Responder r) { self->Handle(std::move(m), r); },
                      limits);
  if (!rpc.ok()) return rpc.status();
  host->rpc_ = *std::move(rpc);
  return host;
}

FakeHost::~FakeHost() {
  if (rpc_) rpc_->Close();
}

absl::Status FakeHost::Register(const std::vector<cluster::ActorKey>& held) {
  capnp::MallocMessageBuilder b;
  auto req = InitRegister(b, id_, proto::coordinator::Role::EXPERT_HOST, shape_);
  req.setEndpoint(endpoint_);
  req.setDevice("cpu");
  req.setMemoryBytes(1u << 30);
  req.setIncarnation(incarnation_);
  auto list = req.initActors(static_cast<unsigned>(held.size()));
  for (size_t i = 0; i < held.size(); ++i) held[i].ToProto(list[i]);
  auto reply = rpc_->Call(kToCoordinator, b, {}, Deadline());
  return reply.status();
}

absl::StatusOr<bool> FakeHost::Heartbeat(uint64_t step) {
  std::vector<std::function<void()>> ready;
  {
    absl::MutexLock lock(&mu_);
    reached_step_ = std::max(reached_step_, step);
    auto parked = std::move(parked_streams_);
    parked_streams_.clear();
    for (auto& [at, stream] : parked) {
      if (at <= reached_step_) {
        ready.push_back(std::move(stream));
      } else {
        parked_streams_.emplace_back(at, std::move(stream));
      }
    }
  }
  for (auto& stream : ready) stream();
  capnp::MallocMessageBuilder b;
  auto req = cluster::InitBody<proto::coordinator::HeartbeatRequest>(b, proto::MessageKind::HEARTBEAT);
  req.setNodeId(id_);
  req.setIncarnation(incarnation_);
  req.setStep(step);
  req.setEpoch(table_epoch());
  auto reply = rpc_->Call(kToCoordinator, b, {}, Deadline());
  if (!reply.ok()) return reply.status();
  auto body = reply->Body<proto::coordinator::HeartbeatReply>();
  if (!body.ok()) return body.status();
  return body->getReregister();
}

absl::StatusOr<transport::DecodedMessage> FakeHost::Call(capnp::MallocMessageBuilder& header,
                                                         std::vector<transport::Frame> data) {
  return rpc_->Call(kToCoordinator, header, std::move(data), Deadline());
}

void FakeHost::Handle(transport::DecodedMessage request, transport::Responder responder) {
  switch (request.envelope().getKind()) {
    case proto::MessageKind::PLACEMENT: {
      auto body = request.Body<proto::coordinator::PlacementRequest>();
      if (!body.ok() || body->which() != proto::coordinator::PlacementRequest::UPDATE) {
        return responder.Fail(absl::InvalidArgumentError("fake host: want a placement update"));
      }
      auto table = cluster::TableFromProto(body->getUpdate());
      if (!table.ok()) return responder.Fail(table.status());
      {
        absl::MutexLock lock(&mu_);
        table_epoch_ = table->epoch;
        live_moves_ = table->live_moves;
        actors_.clear();
        for (const auto& [actor, hosts] : table->entries) {
          if (std::find(hosts.begin(), hosts.end(), id_) != hosts.end()) actors_.push_back(actor);
        }
      }
      capnp::MallocMessageBuilder b;
      cluster::InitBody<proto::coordinator::PlacementReply>(b, proto::MessageKind::PLACEMENT).setEpoch(table->epoch);
      return responder.Reply(b);
    }
    case proto::MessageKind::STATE_STREAM: {
      auto body = request.Body<proto::expert::StateStreamRequest>();
      if (!body.ok()) return responder.Fail(body.status());
      auto actor = cluster::ActorKey::FromProto(body->getActor());
      if (!actor.ok()) return responder.Fail(actor.status());
      if (body->which() == proto::expert::StateStreamRequest::CHUNK_IN) {
        const auto in = body->getChunkIn();
        const transport::Frame& frame = request.data(0);
        bool complete = false;
        {
          absl::MutexLock lock(&mu_);
          std::string& bytes = receiving_[*actor];
          if (in.getIndex() == 0) bytes.clear();
          bytes.append(reinterpret_cast<const char*>(frame.data()), frame.size());
          if (in.getIndex() + 1 == in.getCount()) {
            if (bytes.size() != in.getTotalBytes() || ChecksumOf(bytes) != in.getChecksum()) {
              return responder.Fail(absl::DataLossError("fake host: restored state does not verify"));
            }
            installed_[*actor] = bytes;
            complete = true;
          }
        }
        capnp::MallocMessageBuilder b;
        auto reply = cluster::InitBody<proto::expert::StateStreamReply>(b, proto::MessageKind::STATE_STREAM);
        actor->ToProto(reply.initActor());
        reply.setChunksReceived(in.getIndex() + 1);
        reply.setComplete(complete);
        return responder.Reply(b);
      }
      const auto out = body->getStreamOut();
      StreamOutSeen seen{*actor, out.getDestination().cStr(), out.getAtStep()};
      {
        absl::MutexLock lock(&mu_);
        stream_outs_.push_back(seen);
      }
      std::function<void(transport::Responder, uint32_t)> ack = [actor = *actor](transport::Responder r,
                                                                                  uint32_t chunks) {
        capnp::MallocMessageBuilder b;
        auto reply = cluster::InitBody<proto::expert::StateStreamReply>(b, proto::MessageKind::STATE_STREAM);
        actor.ToProto(reply.initActor());
        reply.setChunksReceived(chunks);
        reply.setComplete(true);
        r.Reply(b);
      };
      // Stream the state in chunks to the coordinator once the host reached atStep; answer
      // once every chunk is stored.
      const uint64_t checkpoint_id = body->getCheckpointId();
      const uint64_t at_step = out.getAtStep();
      const uint64_t chunk_size = out.getChunkBytes();
      auto stream = [this, actor = *actor, checkpoint_id, at_step, chunk_size, responder, ack]() mutable {
        StreamCheckpoint(actor, checkpoint_id, at_step, chunk_size, responder, ack);
      };
      {
        absl::MutexLock lock(&mu_);
        if (at_step > reached_step_) {
          parked_streams_.emplace_back(at_step, std::move(stream));
          return;
        }
      }
      return stream();
    }
    case proto::MessageKind::ADMIN: {
      auto body = request.Body<proto::admin::AdminRequest>();
      if (!body.ok() || body->which() != proto::admin::AdminRequest::FAULTS) {
        return responder.Fail(absl::UnimplementedError("fake host: only faults"));
      }
      {
        absl::MutexLock lock(&mu_);
        fault_specs_.push_back(body->getFaults().getSpec().cStr());
      }
      capnp::MallocMessageBuilder b;
      cluster::InitBody<proto::admin::AdminReply>(b, proto::MessageKind::ADMIN).setDone();
      return responder.Reply(b);
    }
    default:
      return responder.Fail(absl::UnimplementedError("fake host: unexpected kind"));
  }
}

void FakeHost::StreamCheckpoint(const cluster::ActorKey& actor, uint64_t checkpoint_id, uint64_t at_step,
                                uint64_t chunk_size, transport::Responder responder,
                                std::function<void(transport::Responder, uint32_t)> ack) {
  const std::string state = FakeState(actor, at_step);
  const uint64_t chunk_bytes = std::max<uint64_t>(4, chunk_size);
  const uint32_t count = static_cast<uint32_t>((state.size() + chunk_bytes - 1) / chunk_bytes);
  auto remaining = std::make_shared<std::atomic<int>>(static_cast<int>(count));
  auto failed = std::make_shared<std::atomic<bool>>(false);
  for (uint32_t i = 0; i < count; ++i) {
    const absl::string_view bytes = absl::string_view(state).substr(i * chunk_bytes, chunk_bytes);
    capnp::MallocMessageBuilder b;
    auto chunk = cluster::InitBody<proto::checkpoint::ChunkRequest>(b, proto::MessageKind::CHECKPOINT_CHUNK);
    chunk.setCheckpointId(checkpoint_id);
    chunk.setStep(at_step);
    actor.ToProto(chunk.initActor());
    chunk.setHost(id_);
    auto in = chunk.initChunk();
    in.setVersion(at_step);
    in.setIndex(i);
    in.setCount(count);
    in.setOffset(i * chunk_bytes);
    in.setTotalBytes(state.size());
    in.setChecksum(ChecksumOf(state));
    auto frames = cluster::AttachState(b, bytes);
    {
      absl::MutexLock lock(&mu_);
      ++chunks_sent_;
    }
    rpc_->CallAsync(kToCoordinator, b, std::move(frames), Deadline(),
                    [responder, remaining, failed, ack, count](absl::StatusOr<transport::DecodedMessage> r) mutable {
                      if (!r.ok() && !failed->exchange(true)) responder.Fail(r.status());
                      if (--*remaining == 0 && !failed->load()) ack(responder, count);
                    });
  }
}

uint64_t FakeHost::table_epoch() const {
  absl::MutexLock lock(&mu_);
  return table_epoch_;
}
std::vector<cluster::ActorKey> FakeHost::actors() const {
  absl::MutexLock lock(&mu_);
  return actors_;
}
std::vector<cluster::LiveMove> FakeHost::live_moves() const {
  absl::MutexLock lock(&mu_);
  return live_moves_;
}

std::map<cluster::ActorKey, std::string> FakeHost::installed() const {
  absl::MutexLock lock(&mu_);
  return installed_;
}
std::vector<StreamOutSeen> FakeHost::stream_outs() const {
  absl::MutexLock lock(&mu_);
  return stream_outs_;
}
std::vector<std::string> FakeHost::fault_specs() const {
  absl::MutexLock lock(&mu_);
  return fault_specs_;
}
int FakeHost::checkpoint_chunks_sent() const {
  absl::MutexLock lock(&mu_);
  return chunks_sent_;
}

absl::StatusOr<std::unique_ptr<FakeTrainer>> FakeTrainer::Start(const std::string& id, const std::string& coordinator,
                                                                const cluster::ModelShape& shape) {
  std::unique_ptr<FakeTrainer> trainer(new FakeTrainer());
  trainer->id_ = id;
  trainer->shape_ = shape;
  FakeTrainer* self = trainer.get();
  std::string unused;
  auto rpc = MakeNode(id, coordinator, /*bind=*/false, &unused,
                      [self](transport::DecodedMessage m, transport::Responder r) {
                        auto body = m.Body<proto::coordinator::TrainerControlRequest>();
                        if (m.envelope().getKind() == proto::MessageKind::TRAINER_CONTROL && body.ok() &&
                            body->isStop()) {
                          absl::MutexLock lock(&self->mu_);
                          self->stops_.push_back(body->getReason().cStr());
                          capnp::MallocMessageBuilder b;
                          cluster::InitBody<proto::coordinator::TrainerControlReply>(b, proto::MessageKind::TRAINER_CONTROL);
                          return r.Reply(b);
                        }
                        if (m.envelope().getKind() != proto::MessageKind::TRAINER_CONTROL || !body.ok() ||
                            body->which() != proto::coordinator::TrainerControlRequest::ROLLBACK) {
                          return r.Fail(absl::UnimplementedError("fake trainer: only rollback and stop"));
                        }
                        {
                          absl::MutexLock lock(&self->mu_);
                          self->rollbacks_.push_back({body->getRollback().getStep(),
                                                      body->getRollback().getCheckpointId(), body->getEpoch()});
                          if (self->hold_replies_) {
                            self->held_replies_.emplace_back(r, body->getRollback().getStep());
                            return;
                          }
                        }
                        capnp::MallocMessageBuilder b;
                        cluster::InitBody<proto::coordinator::TrainerControlReply>(b, proto::MessageKind::TRAINER_CONTROL)
                            .setStep(body->getRollback().getStep());
                        r.Reply(b);
                      });
  if (!rpc.ok()) return rpc.status();
  trainer->rpc_ = *std::move(rpc);
  return trainer;
}

FakeTrainer::~FakeTrainer() {
  if (rpc_) rpc_->Close();
}

absl::Status FakeTrainer::Register() {
  capnp::MallocMessageBuilder b;
  InitRegister(b, id_, proto::coordinator::Role::TRAINER, shape_).setIncarnation(1);
  return rpc_->Call(kToCoordinator, b, {}, Deadline()).status();
}

absl::StatusOr<bool> FakeTrainer::Heartbeat(uint64_t step, bool finished) {
  capnp::MallocMessageBuilder b;
  auto req = cluster::InitBody<proto::coordinator::HeartbeatRequest>(b, proto::MessageKind::HEARTBEAT);
  req.setNodeId(id_);
  req.setIncarnation(1);
  req.setStep(step);
  req.setDraining(finished);
  auto reply = rpc_->Call(kToCoordinator, b, {}, Deadline());
  if (!reply.ok()) return reply.status();
  auto body = reply->Body<proto::coordinator::HeartbeatReply>();
  if (!body.ok()) return body.status();
  return body->getReregister();
}

absl::Status FakeTrainer::ReportLoad(uint64_t step, const std::vector<ExpertTokens>& loads) {
  capnp::MallocMessageBuilder b;
  auto req = cluster::InitBody<proto::coordinator::LoadReportRequest>(b, proto::MessageKind::LOAD_REPORT);
  req.setTrainer(id_);
  req.setStep(step);
  auto list = req.initLoads(static_cast<unsigned>(loads.size()));
  for (size_t i = 0; i < loads.size(); ++i) {
    list[i].initExpert().setSwitchLayer(loads[i].expert.switch_layer);
    list[i].getExpert().setExpert(loads[i].expert.expert);
    list[i].setTokens(loads[i].tokens);
    list[i].setDropped(loads[i].dropped);
  }
  return rpc_->Call(kToCoordinator, b, {}, Deadline()).status();
}

absl::StatusOr<uint64_t> FakeTrainer::PlacementTableEpoch() {
  capnp::MallocMessageBuilder b;
  cluster::InitBody<proto::coordinator::PlacementRequest>(b, proto::MessageKind::PLACEMENT).setGet();
  auto reply = rpc_->Call(kToCoordinator, b, {}, Deadline());
  if (!reply.ok()) return reply.status();
  auto body = reply->Body<proto::coordinator::PlacementReply>();
  if (!body.ok()) return body.status();
  return body->hasTable() ? body->getTable().getEpoch() : 0;
}

void FakeTrainer::HoldRollbackReplies() {
  absl::MutexLock lock(&mu_);
  hold_replies_ = true;
}

void FakeTrainer::ReleaseRollbackReplies() {
  std::vector<std::pair<transport::Responder, uint64_t>> held;
  {
    absl::MutexLock lock(&mu_);
    hold_replies_ = false;
    held = std::move(held_replies_);
    held_replies_.clear();
  }
  for (auto& [responder, step] : held) {
    capnp::MallocMessageBuilder b;
    cluster::InitBody<proto::coordinator::TrainerControlReply>(b, proto::MessageKind::TRAINER_CONTROL).setStep(step);
    responder.Reply(b);
  }
}

std::vector<RollbackSeen> FakeTrainer::rollbacks() const {
  absl::MutexLock lock(&mu_);
  return rollbacks_;
}

std::vector<std::string> FakeTrainer::stops() const {
  absl::MutexLock lock(&mu_);
  return stops_;
}

bool WaitFor(const std::function<bool()>& condition) {
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!condition()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

Heartbeater::Heartbeater(std::vector<FakeHost*> hosts, std::vector<FakeTrainer*> trainers)
    : hosts_(std::move(hosts)), trainers_(std::move(trainers)) {
  thread_ = std::thread([this] {
    while (!stop_) {
      for (FakeHost* h : hosts_) {
        auto again = h->Heartbeat(step);
        if (again.ok() && *again) (void)h->Register(h->actors());
      }
      for (FakeTrainer* t : trainers_) {
        auto again = t->Heartbeat(step);
        if (again.ok() && *again) (void)t->Register();
      }
      absl::SleepFor(absl::Milliseconds(30));
    }
  });
}

Heartbeater::~Heartbeater() {
  stop_ = true;
  thread_.join();
}

}  // namespace sy::coordinator::testing
