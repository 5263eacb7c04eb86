// Door checks and routing of an expert host's requests (see host_service.h).
#include "services/expert_host/host_service.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "gpu/model/bucket_codec.h"
#include "gpu/model/expert.h"
#include "gpu/model/model.h"
#include "gpu/model/params.h"
#include "proto/coordinator.capnp.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement_codec.h"
#include "services/expert_host/host_metrics.h"

namespace sy::expert_host {
namespace {

absl::Time Deadline(const transport::DecodedMessage& request) {
  const int64_t ms = request.envelope().getDeadlineUnixMs();
  return ms > 0 ? absl::FromUnixMillis(ms) : absl::Now() + absl::Hours(1);
}

const char* KindName(proto::MessageKind kind) {
  switch (kind) {
    case proto::MessageKind::EXPERT_FORWARD: return "expert_forward";
    case proto::MessageKind::EXPERT_BACKWARD: return "expert_backward";
    case proto::MessageKind::PARAM_PUSH: return "param_push";
    case proto::MessageKind::PARAM_PULL: return "param_pull";
    case proto::MessageKind::STEP_COMMIT: return "step_commit";
    case proto::MessageKind::REPLICA_GRADIENTS: return "replica_gradients";
    default: return "other";
  }
}

// Initial values of parameter `index`'s elements [begin, end) appended to out.
void AppendInit(const std::vector<gpu::ParamInfo>& infos, uint32_t index, uint64_t seed, int64_t begin, int64_t end,
                std::vector<float>* out) {
  const size_t at = out->size();
  out->resize(at + static_cast<size_t>(end - begin));
  gpu::InitParamRange(infos[index], index, seed, begin, end, out->data() + at);
}

}  // namespace

HostService::HostService(const HostConfig& config, gpu::Backend* backend, metrics::Registry* registry)
    : config_(config),
      backend_(backend),
      placement_(config.model, config.num_hosts),
      infos_(gpu::ParamInfos(config.model)),
      shard_params_(cluster::DenseShardParams(infos_)),
      registry_(registry),
      placement_strand_(runtime_.NewStrand()) {
  for (int l = 0; l < config.model.layers; ++l) {
    if (config.model.IsSwitchLayer(l)) switch_layers_.push_back(l);
  }
}

HostService::~HostService() {
  runtime_.Shutdown(actor::Runtime::ShutdownMode::kCancel);
  step_.reset();
  absl::MutexLock lock(&actors_mu_);
  actors_.clear();
}

absl::StatusOr<std::unique_ptr<HostService>> HostService::Create(const HostConfig& config, gpu::Backend* backend,
                                                                  metrics::Registry* registry) {
  if (absl::Status s = config.model.Validate(); !s.ok()) return s;
  if (config.num_hosts < 1 || config.host_index < 0 || config.host_index >= config.num_hosts) {
    return absl::InvalidArgumentError(
        absl::StrCat("host index ", config.host_index, " outside [0, ", config.num_hosts, ")"));
  }
  std::unique_ptr<HostService> service(new HostService(config, backend, registry));
  std::vector<cluster::ActorKey> mine;
  for (size_t l = 0; l < service->switch_layers_.size(); ++l) {
    for (int e = 0; e < config.model.experts; ++e) {
      if (service->placement_.HostOfExpert(service->switch_layers_[l], e) != config.host_index) continue;
      mine.push_back(cluster::ActorKey::Expert(static_cast<uint32_t>(l), static_cast<uint32_t>(e)));
    }
  }
  for (size_t s = 0; s < service->shard_params_.size(); ++s) {
    if (service->placement_.HostOfDenseShard(static_cast<int>(s)) != config.host_index) continue;
    mine.push_back(cluster::ActorKey::Dense(static_cast<uint32_t>(s)));
  }
  std::vector<std::shared_ptr<ParamActor>> all;
  {
    absl::MutexLock lock(&service->actors_mu_);
    for (const cluster::ActorKey& key : mine) {
      absl::StatusOr<std::shared_ptr<ParamActor>> actor = service->BuildActor(key, /*awaiting_restore=*/false);
      if (!actor.ok()) return actor.status();
      service->actors_[key] = *std::move(actor);
    }
    all = service->AllActors();
  }
  service->step_ = std::make_shared<StepActor>(service->runtime_, std::move(all), config.micro_batches,
                                               config.step_timeout, registry);
  SY_LOG(INFO) << "host " << config.host_index << "/" << config.num_hosts << ": " << service->num_experts()
               << " experts, " << service->num_shards() << " dense shards, " << config.model.DebugString();
  return service;
}

absl::Status HostService::CheckKey(const cluster::ActorKey& key) const {
  const bool known = key.dense ? key.shard < shard_params_.size()
                               : key.layer < switch_layers_.size() &&
                                     key.expert < static_cast<uint32_t>(config_.model.experts);
  if (known) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("actor ", key.ToString(), " is not part of this model (",
                                                 switch_layers_.size(), " Switch layers of ", config_.model.experts,
                                                 " experts, ", shard_params_.size(), " dense shards)"));
}

absl::StatusOr<std::shared_ptr<ParamActor>> HostService::BuildActor(const cluster::ActorKey& key,
                                                                    bool awaiting_restore) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  std::vector<float> init;
  std::vector<StateSegment> segments;
  ActorIdentity id;
  if (key.dense) {
    const uint32_t index = shard_params_[key.shard];
    AppendInit(infos_, index, config_.seed, 0, infos_[index].numel, &init);
    segments.push_back({index, -1, infos_[index].numel, infos_[index].decays});
    id = ActorIdentity{false, 0, 0, static_cast<int>(key.shard)};
  } else {
    const int l = switch_layers_[key.layer], e = static_cast<int>(key.expert);
    const std::string p = absl::StrCat("layer", l, ".");
    // The expert's block (gpu::ExpertLayout), expert e's slice of each stacked parameter.
    const gpu::ExpertLayout layout(config_.model);
    for (const gpu::ExpertPart& part : layout.parts()) {
      const auto info = std::find_if(infos_.begin(), infos_.end(),
                                     [&](const gpu::ParamInfo& i) { return i.name == p + part.name; });
      if (info == infos_.end()) return absl::InternalError(absl::StrCat("model has no parameter ", p, part.name));
      const uint32_t index = static_cast<uint32_t>(info - infos_.begin());
      AppendInit(infos_, index, config_.seed, e * part.numel, (e + 1) * part.numel, &init);
      segments.push_back({index, e, part.numel, info->decays});
    }
    id = ActorIdentity{true, l, e, 0};
  }
  auto state = ParamState::Create(backend_, std::move(segments), init, config_.micro_batches, config_.adam);
  if (!state.ok()) return state.status();
  return std::make_shared<ParamActor>(runtime_, id, config_.model, *std::move(state), registry_,
                                      config_.checkpoint_every, awaiting_restore);
}

std::vector<std::shared_ptr<ParamActor>> HostService::AllActors() const {
  std::vector<std::shared_ptr<ParamActor>> all;
  for (const auto& [key, actor] : actors_) all.push_back(actor);
  return all;
}

size_t HostService::num_experts() const {
  absl::MutexLock lock(&actors_mu_);
  size_t n = 0;
  for (const auto& [key, actor] : actors_) n += key.dense ? 0 : 1;
  return n;
}

size_t HostService::num_shards() const {
  absl::MutexLock lock(&actors_mu_);
  size_t n = 0;
  for (const auto& [key, actor] : actors_) n += key.dense ? 1 : 0;
  return n;
}

std::vector<cluster::ActorKey> HostService::held_actors() const {
  absl::MutexLock lock(&actors_mu_);
  std::vector<cluster::ActorKey> keys;
  for (const auto& [key, actor] : actors_) keys.push_back(key);
  return keys;
}

size_t HostService::num_awaiting_restore() const {
  absl::MutexLock lock(&actors_mu_);
  return awaiting_restore_.size();
}

absl::Status HostService::CheckEpoch(const transport::DecodedMessage& request) const {
  const uint64_t epoch = request.envelope().getPlacementEpoch();
  const uint64_t current = placement_epoch_.load();
  if (epoch == 0 || epoch >= current) return absl::OkStatus();
  absl::Status stale = absl::AbortedError(absl::StrCat("stale placement epoch ", epoch, "; current is ", current));
  stale.SetPayload(transport::kCurrentEpochPayload, absl::Cord(absl::StrCat(current)));
  return stale;
}

void HostService::Handle(transport::DecodedMessage request, transport::Responder responder) {
  const proto::MessageKind kind = request.envelope().getKind();
  registry_->GetCounter("sy_host_requests_total", "Requests received, by kind.", {{"kind", KindName(kind)}})
      .Increment();
  size_t bytes = request.message().ByteSize();
  registry_->GetCounter("sy_host_request_bytes_total", "Bytes of requests received.").Increment(bytes);
  absl::Status status;
  switch (kind) {
    case proto::MessageKind::EXPERT_FORWARD:
    case proto::MessageKind::EXPERT_BACKWARD:
    case proto::MessageKind::PARAM_PUSH:
    case proto::MessageKind::PARAM_PULL:
    case proto::MessageKind::STEP_COMMIT:
    case proto::MessageKind::REPLICA_GRADIENTS:
      status = CheckEpoch(request);
      break;
    default:
      break;
  }
  if (status.ok()) status = Dispatch(kind, request, responder);
  if (!status.ok()) {
    SY_LOG(DEBUG) << "rejected " << KindName(kind) << " from " << request.envelope().getSender().cStr() << ": "
                  << status;
    FailAndCount(registry_, responder, status);
  }
}

absl::Status HostService::Dispatch(proto::MessageKind kind, const transport::DecodedMessage& request,
                                   transport::Responder responder) {
  absl::Status status;
  switch (kind) {
    case proto::MessageKind::EXPERT_FORWARD: status = HandleForward(request, responder); break;
    case proto::MessageKind::EXPERT_BACKWARD: status = HandleBackward(request, responder); break;
    case proto::MessageKind::PARAM_PUSH: status = HandlePush(request, responder); break;
    case proto::MessageKind::PARAM_PULL: status = HandlePull(request, responder); break;
    case proto::MessageKind::STEP_COMMIT: status = HandleStep(request, responder); break;
    case proto::MessageKind::PLACEMENT: status = HandlePlacement(request, responder); break;
    case proto::MessageKind::STATE_STREAM: status = HandleStateStream(request, responder); break;
    case proto::MessageKind::REPLICA_GRADIENTS: status = HandleReplicaGradients(request, responder); break;
    default:
      status = absl::UnimplementedError(absl::StrCat("expert host: message kind ", static_cast<int>(kind),
                                                     " is not served here"));
  }
  return status;
}

absl::StatusOr<std::shared_ptr<ParamActor>> HostService::Expert(uint32_t layer, uint32_t expert) const {
  const gpu::ModelConfig& mc = config_.model;
  if (layer >= static_cast<uint32_t>(mc.layers) || !mc.IsSwitchLayer(static_cast<int>(layer)) ||
      expert >= static_cast<uint32_t>(mc.experts)) {
    return absl::NotFoundError(absl::StrCat("unknown expert (layer ", layer, ", expert ", expert, ")"));
  }
  const auto switch_index = std::find(switch_layers_.begin(), switch_layers_.end(), static_cast<int>(layer));
  const auto key = cluster::ActorKey::Expert(static_cast<uint32_t>(switch_index - switch_layers_.begin()), expert);
  absl::MutexLock lock(&actors_mu_);
  auto it = actors_.find(key);
  if (it == actors_.end()) {
    const uint64_t epoch = placement_epoch_.load();
    return absl::NotFoundError(absl::StrCat(
        "expert (layer ", layer, ", expert ", expert, ") is not on host ", config_.host_index,
        epoch > 0 ? absl::StrCat(" in placement epoch ", epoch)
                  : absl::StrCat(" (it lives on host ",
                                 placement_.HostOfExpert(static_cast<int>(layer), static_cast<int>(expert)), ")")));
  }
  return it->second;
}

absl::StatusOr<std::shared_ptr<ParamActor>> HostService::Shard(uint32_t shard) const {
  if (shard >= shard_params_.size()) return absl::NotFoundError(absl::StrCat("unknown dense shard ", shard));
  absl::MutexLock lock(&actors_mu_);
  auto it = actors_.find(cluster::ActorKey::Dense(shard));
  if (it == actors_.end()) {
    const uint64_t epoch = placement_epoch_.load();
    return absl::NotFoundError(absl::StrCat(
        "dense shard ", shard, " is not on host ", config_.host_index,
        epoch > 0 ? absl::StrCat(" in placement epoch ", epoch)
                  : absl::StrCat(" (it lives on host ", placement_.HostOfDenseShard(static_cast<int>(shard)), ")")));
  }
  return it->second;
}

// A NaN or Inf in a request would reach the weights at the next apply: refuse it at the
// door (the trainer's run has diverged or the message is corrupt) and change nothing.
static absl::Status RequireFinite(const std::vector<float>& values, const char* what) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(absl::StrCat(what, " element ", i, " is ", values[i], " (not finite)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> HostService::BucketFrame(const transport::DecodedMessage& request, uint32_t rows,
                                                            uint32_t d_model, proto::DType* dtype) const {
  if (d_model != static_cast<uint32_t>(config_.model.d_model)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dModel ", d_model, " but the model's d_model is ", config_.model.d_model));
  }
  if (rows > static_cast<uint32_t>(config_.max_bucket_rows)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenCount ", rows, " exceeds the ", config_.max_bucket_rows, " tokens of a micro-batch"));
  }
  auto tensors = request.envelope().getTensors();
  if (tensors.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("expected one tensor frame, got ", tensors.size()));
  }
  auto desc = tensors[0];
  *dtype = desc.getDtype();
  if (*dtype != proto::DType::F32 && *dtype != proto::DType::BF16) {
    return absl::InvalidArgumentError("tensor dtype must be f32 or bf16");
  }
  auto shape = desc.getShape();
  if (shape.size() != 2 || shape[0] != rows || shape[1] != d_model) {
    return absl::InvalidArgumentError(absl::StrCat("tensor shape does not match (tokenCount ", rows, ", dModel ",
                                                   d_model, ")"));
  }
  std::vector<float> values(static_cast<size_t>(rows) * d_model);
  if (absl::Status s = gpu::DecodeFloats(request.data(0), *dtype, static_cast<int64_t>(values.size()),
                                         values.data());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = RequireFinite(values, "bucket"); !s.ok()) return s;
  return values;
}

absl::Status HostService::HandlePlacement(const transport::DecodedMessage& request, transport::Responder responder) {
  auto body = request.Body<proto::coordinator::PlacementRequest>();
  if (!body.ok()) return body.status();
  if (body->which() != proto::coordinator::PlacementRequest::UPDATE) {
    return absl::InvalidArgumentError("expert host: a placement request must carry an update");
  }
  absl::StatusOr<cluster::DecodedTable> table = cluster::TableFromProto(body->getUpdate());
  if (!table.ok()) return table.status();
  const std::string me = absl::StrCat("host-", config_.host_index);
  std::map<cluster::ActorKey, std::vector<std::string>> mine;  // -> the other replicas' hosts
  for (const auto& [actor, hosts] : table->entries) {
    if (std::find(hosts.begin(), hosts.end(), me) == hosts.end()) continue;
    if (absl::Status s = CheckKey(actor); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("placement epoch ", table->epoch, ": ", s.message()));
    }
    std::vector<std::string>& peers = mine[actor];
    for (const std::string& host : hosts) {
      if (host == me) continue;
      if (table->endpoints.count(host) == 0 || table->endpoints.at(host).empty()) {
        return absl::InvalidArgumentError(absl::StrCat("placement epoch ", table->epoch, ": replica host ", host,
                                                       " of ", actor.ToString(), " has no endpoint"));
      }
      peers.push_back(host);
    }
  }
  // Built and swapped on the runtime's thread (the backend's), one table at a time.
  placement_strand_->Post([this, epoch = table->epoch, mine = std::move(mine), endpoints = table->endpoints,
                           responder]() mutable {
    if (absl::Status s = ApplyPlacement(epoch, mine, endpoints); !s.ok()) {
      SY_LOG(WARNING) << "placement epoch " << epoch << " refused: " << s;
      FailAndCount(registry_, responder, s);
      return;
    }
    capnp::MallocMessageBuilder b;
    cluster::InitBody<proto::coordinator::PlacementReply>(b, proto::MessageKind::PLACEMENT).setEpoch(epoch);
    responder.Reply(b);
  });
  return absl::OkStatus();
}

absl::Status HostService::ApplyPlacement(uint64_t epoch,
                                         const std::map<cluster::ActorKey, std::vector<std::string>>& mine,
                                         const std::map<std::string, std::string>& endpoints) {
  const uint64_t current = placement_epoch_.load();
  if (epoch < current) {
    absl::Status stale =
        absl::AbortedError(absl::StrCat("stale placement epoch ", epoch, "; current is ", current));
    stale.SetPayload(transport::kCurrentEpochPayload, absl::Cord(absl::StrCat(current)));
    return stale;
  }
  std::vector<cluster::ActorKey> added;
  {
    absl::MutexLock lock(&actors_mu_);
    for (const auto& [key, peers] : mine) {
      if (actors_.count(key) == 0) added.push_back(key);
    }
  }
  // Build every new actor before changing anything: a failure leaves the host as it was.
  std::map<cluster::ActorKey, std::shared_ptr<ParamActor>> built;
  for (const cluster::ActorKey& key : added) {
    absl::StatusOr<std::shared_ptr<ParamActor>> actor = BuildActor(key, /*awaiting_restore=*/true);
    if (!actor.ok()) return actor.status();
    built[key] = *std::move(actor);
  }
  std::set<cluster::ActorKey> wanted;
  for (const auto& [key, peers] : mine) wanted.insert(key);
  std::vector<std::pair<cluster::ActorKey, std::shared_ptr<ParamActor>>> removed;
  std::vector<std::shared_ptr<ParamActor>> all;
  {
    absl::MutexLock lock(&actors_mu_);
    for (auto it = actors_.begin(); it != actors_.end();) {
      if (wanted.count(it->first) != 0) {
        ++it;
        continue;
      }
      removed.emplace_back(it->first, std::move(it->second));
      awaiting_restore_.erase(it->first);
      it = actors_.erase(it);
    }
    for (auto& [key, actor] : built) {
      actors_[key] = std::move(actor);
      awaiting_restore_.insert(key);
    }
    all = AllActors();
    placement_epoch_.store(epoch);
  }
  SetReplicas(mine, endpoints);
  step_->Tell(SetActorsMsg{std::move(all)});
  const std::string me = absl::StrCat("host-", config_.host_index);
  for (auto& [key, actor] : removed) {
    actor->Tell(RemovedMsg{absl::StrCat(key.ToString(), " is no longer placed on ", me, " (placement epoch ", epoch,
                                        ")")});
  }
  if (!added.empty() || !removed.empty()) {
    SY_LOG(INFO) << "placement epoch " << epoch << ": " << added.size() << " actors added (waiting for a restore), "
                 << removed.size() << " removed";
  }
  return absl::OkStatus();
}

absl::Status HostService::CheckMicroBatch(uint32_t micro_batch) const {
  if (micro_batch < static_cast<uint32_t>(config_.micro_batches)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("micro-batch ", micro_batch, " outside [0, ", config_.micro_batches, ")"));
}

void HostService::NoteStep(uint64_t step) {
  uint64_t seen = highest_step_seen_.load();
  while (step > seen) {
    if (highest_step_seen_.compare_exchange_weak(seen, step)) {
      step_->Tell(StepSeenMsg{step});
      return;
    }
  }
}

absl::Status HostService::HandleForward(const transport::DecodedMessage& request, transport::Responder responder) {
  auto body = request.Body<proto::expert::ExpertForwardRequest>();
  if (!body.ok()) return body.status();
  auto bucket = body->getBucket();
  auto actor = Expert(bucket.getLayer(), bucket.getExpert());
  if (!actor.ok()) return actor.status();
  ForwardMsg m;
  m.training = body->getTraining();
  m.step = bucket.getStep();
  m.version = body->getVersion();
  if (m.training && (m.step == 0 || m.version != m.step - 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("training forward of step ", m.step, " must expect version step-1, not ", m.version));
  }
  if (absl::Status s = CheckMicroBatch(bucket.getMicroBatch()); !s.ok()) return s;
  auto values = BucketFrame(request, body->getTokenCount(), body->getDModel(), &m.dtype);
  if (!values.ok()) return values.status();
  m.micro_batch = bucket.getMicroBatch();
  m.seed = body->getDropoutSeed();
  m.rows = static_cast<int>(body->getTokenCount());
  m.in = *std::move(values);
  m.deadline = Deadline(request);
  m.responder = std::move(responder);
  if (m.training) NoteStep(m.step);
  (*actor)->Tell(std::move(m));
  return absl::OkStatus();
}

absl::Status HostService::HandleBackward(const transport::DecodedMessage& request, transport::Responder responder) {
  auto body = request.Body<proto::expert::ExpertBackwardRequest>();
  if (!body.ok()) return body.status();
  auto bucket = body->getBucket();
  auto actor = Expert(bucket.getLayer(), bucket.getExpert());
  if (!actor.ok()) return actor.status();
  BackwardMsg m;
  m.step = bucket.getStep();
  m.version = body->getVersion();
  if (m.step == 0 || m.version != m.step - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("backward of step ", m.step, " must expect version step-1, not ", m.version));
  }
  if (absl::Status s = CheckMicroBatch(bucket.getMicroBatch()); !s.ok()) return s;
  auto values = BucketFrame(request, body->getTokenCount(), body->getDModel(), &m.dtype);
  if (!values.ok()) return values.status();
  m.micro_batch = bucket.getMicroBatch();
  m.rows = static_cast<int>(body->getTokenCount());
  m.dout = *std::move(values);
  m.deadline = Deadline(request);
  m.responder = std::move(responder);
  (*actor)->Tell(std::move(m));
  return absl::OkStatus();
}

absl::Status HostService::HandlePush(const transport::DecodedMessage& request, transport::Responder responder) {
  auto body = request.Body<proto::parameter::PushRequest>();
  if (!body.ok()) return body.status();
  auto actor = Shard(body->getShard());
  if (!actor.ok()) return actor.status();
  const int64_t numel = gpu::ParamInfos(config_.model)[shard_params_[body->getShard()]].numel;
  if (body->getElementCount() != static_cast<uint64_t>(numel)) {
    return absl::InvalidArgumentError(absl::StrCat("shard ", body->getShard(), " has ", numel, " elements, not ",
                                                   body->getElementCount()));
  }
  auto mbs = body->getMicroBatches();
  if (mbs.size() != 1 || mbs[0] >= static_cast<uint32_t>(config_.micro_batches)) {
    return absl::InvalidArgumentError("a push carries exactly one micro-batch index in [0, M)");
  }
  if (body->getStep() == 0) return absl::InvalidArgumentError("push for step 0 (steps start at 1)");
  auto tensors = request.envelope().getTensors();
  if (tensors.size() != 1 || tensors[0].getDtype() != proto::DType::F32 || tensors[0].getShape().size() != 1 ||
      tensors[0].getShape()[0] != static_cast<uint64_t>(numel)) {
    return absl::InvalidArgumentError(absl::StrCat("push needs one f32 tensor of shape (", numel, ")"));
  }
  PushMsg m;
  m.step = body->getStep();
  m.micro_batch = mbs[0];
  m.grad.resize(static_cast<size_t>(numel));
  if (absl::Status s = gpu::DecodeFloats(request.data(0), proto::DType::F32, numel, m.grad.data()); !s.ok()) {
    return s;
  }
  if (absl::Status s = RequireFinite(m.grad, "dense gradient"); !s.ok()) return s;
  m.deadline = Deadline(request);
  m.responder = std::move(responder);
  NoteStep(m.step);
  (*actor)->Tell(std::move(m));
  return absl::OkStatus();
}

absl::Status HostService::HandlePull(const transport::DecodedMessage& request, transport::Responder responder) {
  auto body = request.Body<proto::parameter::PullRequest>();
  if (!body.ok()) return body.status();
  absl::StatusOr<std::shared_ptr<ParamActor>> actor =
      body->getTarget() == proto::parameter::PullTarget::EXPERT ? Expert(body->getExpertLayer(), body->getExpertIndex())
                                                                : Shard(body->getShard());
  if (!actor.ok()) return actor.status();
  PullMsg m;
  m.version = body->getVersion();
  m.expert = body->getTarget() == proto::parameter::PullTarget::EXPERT;
  m.deadline = Deadline(request);
  m.responder = std::move(responder);
  (*actor)->Tell(std::move(m));
  return absl::OkStatus();
}

absl::Status HostService::HandleStep(const transport::DecodedMessage& request, transport::Responder responder) {
  auto body = request.Body<proto::expert::StepCommitRequest>();
  if (!body.ok()) return body.status();
  const uint64_t step = body->getStep();
  const auto phase = body->getPhase();
  if (phase != proto::expert::StepPhase::STATUS) {
    if (step == 0) return absl::InvalidArgumentError("step 0 (steps start at 1)");
    if (body->getTotalMicroBatches() != static_cast<uint32_t>(config_.micro_batches)) {
      return absl::InvalidArgumentError(absl::StrCat("totalMicroBatches ", body->getTotalMicroBatches(),
                                                     " but the host trains with M = ", config_.micro_batches));
    }
  }
  if (phase != proto::expert::StepPhase::STATUS) {
    absl::MutexLock lock(&actors_mu_);
    if (!awaiting_restore_.empty()) {
      return absl::UnavailableError(absl::StrCat("step ", step, ": ", awaiting_restore_.size(),
                                                 " actor(s) placed on this host are being restored (first: ",
                                                 awaiting_restore_.begin()->ToString(), ")"));
    }
  }
  switch (phase) {
    case proto::expert::StepPhase::COMMIT: {
      CommitMsg m;
      m.step = step;
      for (uint32_t mb : body->getMicroBatches()) {
        if (mb >= static_cast<uint32_t>(config_.micro_batches)) {
          return absl::InvalidArgumentError(absl::StrCat("commit names micro-batch ", mb, " outside [0, M)"));
        }
        m.micro_batches.push_back(mb);
      }
      for (auto s : body->getStats()) m.stats.push_back(cluster::StatsFromWire(s));
      m.responder = std::move(responder);
      step_->Tell(std::move(m));
      return absl::OkStatus();
    }
    case proto::expert::StepPhase::GATHER_NORMS:
      step_->Tell(GatherMsg{step, std::move(responder)});
      return absl::OkStatus();
    case proto::expert::StepPhase::APPLY: {
      const float scale = body->getClipScale(), lr = body->getLearningRate();
      if (!(scale > 0.0f && scale <= 1.0f) || !(lr >= 0.0f && lr < 1e3f)) {
        return absl::InvalidArgumentError("apply needs 0 < clipScale <= 1 and a finite learningRate >= 0");
      }
      step_->Tell(StepApplyMsg{step, scale, lr, std::move(responder)});
      return absl::OkStatus();
    }
    case proto::expert::StepPhase::STATUS:
      step_->Tell(HostStatusMsg{std::move(responder)});
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown step phase");
}

void HostService::SetReplicas(const std::map<cluster::ActorKey, std::vector<std::string>>& mine,
                              const std::map<std::string, std::string>& endpoints) {
  transport::RpcNode* rpc = rpc_.load();
  for (const auto& [key, peers] : mine) {
    for (const std::string& peer : peers) {
      const std::string name = absl::StrCat(peer, "@", endpoints.at(peer));
      if (rpc != nullptr && connected_peers_.count(name) == 0) {
        absl::Status connected = rpc->transport().Connect(name, endpoints.at(peer));
        if (!connected.ok() && connected.code() != absl::StatusCode::kAlreadyExists) {
          // Its contributions then never arrive: the step times out and the coordinator recovers.
          SY_LOG(ERROR) << "cannot connect to replica host " << peer << " at " << endpoints.at(peer) << ": "
                        << connected;
          continue;
        }
        connected_peers_.insert(name);
      }
      absl::MutexLock lock(&peer_names_mu_);
      peer_names_[peer] = name;
    }
    auto known = replica_peers_.find(key);
    if (known != replica_peers_.end() ? known->second == peers : peers.empty()) continue;
    std::shared_ptr<ParamActor> actor;
    {
      absl::MutexLock lock(&actors_mu_);
      auto it = actors_.find(key);
      if (it == actors_.end()) continue;
      actor = it->second;
    }
    if (!peers.empty()) {
      SY_LOG(INFO) << key.ToString() << " is replicated: its gradient contributions are exchanged with "
                   << absl::StrJoin(peers, ", ");
    }
    actor->Tell(ReplicasMsg{peers, [this, key = key](const std::string& peer, uint64_t step,
                                                     const std::vector<uint32_t>& micro_batches,
                                                     const std::vector<std::vector<float>>& grads) {
                              SendReplicaGradients(key, peer, step, micro_batches, grads);
                            }});
  }
  for (auto it = replica_peers_.begin(); it != replica_peers_.end();) {
    it = mine.count(it->first) == 0 ? replica_peers_.erase(it) : std::next(it);
  }
  for (const auto& [key, peers] : mine) replica_peers_[key] = peers;
}

void HostService::SendReplicaGradients(const cluster::ActorKey& actor, const std::string& peer, uint64_t step,
                                       const std::vector<uint32_t>& micro_batches,
                                       const std::vector<std::vector<float>>& grads) {
  transport::RpcNode* rpc = rpc_.load();
  std::string name;
  {
    absl::MutexLock lock(&peer_names_mu_);
    auto it = peer_names_.find(peer);
    if (it != peer_names_.end()) name = it->second;
  }
  if (rpc == nullptr || name.empty()) {
    SY_LOG(ERROR) << "step " << step << ": no connection to replica host " << peer << " for " << actor.ToString();
    return;
  }
  capnp::MallocMessageBuilder b;
  auto env = cluster::InitEnvelope(b, proto::MessageKind::REPLICA_GRADIENTS);
  env.setPlacementEpoch(placement_epoch_.load());
  auto body = env.initBody().initAs<proto::expert::ReplicaGradientsRequest>();
  actor.ToProto(body.initActor());
  body.setStep(step);
  body.setSender(absl::StrCat("host-", config_.host_index));
  auto mbs = body.initMicroBatches(static_cast<unsigned>(micro_batches.size()));
  auto tensors = env.initTensors(static_cast<unsigned>(grads.size()));
  std::vector<transport::Frame> frames;
  for (size_t i = 0; i < grads.size(); ++i) {
    mbs.set(static_cast<unsigned>(i), micro_batches[i]);
    transport::SetTensor(tensors[static_cast<unsigned>(i)], "gradient", proto::TensorRole::GRADIENTS,
                         proto::DType::F32, {grads[i].size()});
    frames.push_back(
        gpu::EncodeFloats(grads[i].data(), static_cast<int64_t>(grads[i].size()), proto::DType::F32));
  }
  rpc->CallAsync({name, transport::Route::kConnected}, b, std::move(frames), absl::Now() + config_.step_timeout,
                 [actor, peer, step](absl::StatusOr<transport::DecodedMessage> reply) {
                   if (!reply.ok()) {
                     SY_LOG(WARNING) << "step " << step << ": replica host " << peer << " refused the gradients of "
                                     << actor.ToString() << ": " << reply.status();
                   }
                 });
}

int64_t HostService::ActorSize(const cluster::ActorKey& key) const {
  if (key.dense) return infos_[shard_params_[key.shard]].numel;
  return gpu::ExpertLayout(config_.model).size();
}

absl::Status HostService::HandleReplicaGradients(const transport::DecodedMessage& request,
                                                 transport::Responder responder) {
  auto body = request.Body<proto::expert::ReplicaGradientsRequest>();
  if (!body.ok()) return body.status();
  absl::StatusOr<cluster::ActorKey> key = cluster::ActorKey::FromProto(body->getActor());
  if (!key.ok()) return key.status();
  if (absl::Status s = CheckKey(*key); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<ParamActor>> actor = ActorOf(*key);
  if (!actor.ok()) return actor.status();
  if (body->getStep() == 0) return absl::InvalidArgumentError("replica gradients for step 0 (steps start at 1)");
  auto mbs = body->getMicroBatches();
  auto tensors = request.envelope().getTensors();
  if (tensors.size() != mbs.size() || request.message().data.size() != mbs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("replica gradients: ", mbs.size(), " micro-batches but ",
                                                   tensors.size(), " tensors and ", request.message().data.size(), " frames"));
  }
  const int64_t size = ActorSize(*key);
  PeerGradientsMsg m;
  m.step = body->getStep();
  m.sender = body->getSender().cStr();
  for (unsigned i = 0; i < mbs.size(); ++i) {
    if (absl::Status s = CheckMicroBatch(mbs[i]); !s.ok()) return s;
    if (i > 0 && mbs[i] <= mbs[i - 1]) return absl::InvalidArgumentError("replica gradients: micro-batches must ascend");
    if (tensors[i].getDtype() != proto::DType::F32 || tensors[i].getShape().size() != 1 ||
        tensors[i].getShape()[0] != static_cast<uint64_t>(size)) {
      return absl::InvalidArgumentError(absl::StrCat("replica gradients of ", key->ToString(),
                                                     " need f32 tensors of shape (", size, ")"));
    }
    std::vector<float>& grad = m.grads.emplace_back(static_cast<size_t>(size));
    if (absl::Status s = gpu::DecodeFloats(request.data(i), proto::DType::F32, size, grad.data()); !s.ok()) {
      return s;
    }
    if (absl::Status s = RequireFinite(grad, "replica gradient"); !s.ok()) return s;
    m.micro_batches.push_back(mbs[i]);
  }
  m.deadline = Deadline(request);
  m.responder = std::move(responder);
  (*actor)->Tell(std::move(m));
  return absl::OkStatus();
}

}  // namespace sy::expert_host
