// Door checks and routing of an expert host's requests (see host_service.h).
#include "services/expert_host/host_service.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "gpu/model/model.h"
#include "gpu/model/params.h"
#include "proto/coordinator.capnp.h"
#include "proto/expert.capnp.h"
#include "services/coordinator/placement_codec.h"
#include "services/coordinator/rpc_util.h"
#include "services/expert_host/host_metrics.h"
#include "proto/parameter.capnp.h"
#include "services/trainer/wire_tensor.h"

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

HostService::HostService(const HostConfig& config, metrics::Registry* registry)
    : config_(config), placement_(config.model, config.num_hosts), registry_(registry) {}

HostService::~HostService() {
  runtime_.Shutdown(actor::Runtime::ShutdownMode::kCancel);
  step_.reset();
  experts_.clear();
  shards_.clear();
}

absl::StatusOr<std::unique_ptr<HostService>> HostService::Create(const HostConfig& config, gpu::Backend* backend,
                                                                  metrics::Registry* registry) {
  if (absl::Status s = config.model.Validate(); !s.ok()) return s;
  if (config.num_hosts < 1 || config.host_index < 0 || config.host_index >= config.num_hosts) {
    return absl::InvalidArgumentError(
        absl::StrCat("host index ", config.host_index, " outside [0, ", config.num_hosts, ")"));
  }
  std::unique_ptr<HostService> service(new HostService(config, registry));
  const gpu::ModelConfig& mc = config.model;
  const std::vector<gpu::ParamInfo> infos = gpu::ParamInfos(mc);
  auto index_of = [&](const std::string& name) -> uint32_t {
    for (size_t i = 0; i < infos.size(); ++i) {
      if (infos[i].name == name) return static_cast<uint32_t>(i);
    }
    return 0;
  };
  std::vector<std::shared_ptr<ParamActor>> all;
  const int64_t C = mc.d_model, F = mc.d_ff;
  for (int l = 0; l < mc.layers; ++l) {
    if (!mc.IsSwitchLayer(l)) continue;
    const std::string p = absl::StrCat("layer", l, ".");
    const uint32_t w_in = index_of(p + "expert_w_in"), b_in = index_of(p + "expert_b_in"),
                   w_out = index_of(p + "expert_w_out"), b_out = index_of(p + "expert_b_out");
    for (int e = 0; e < mc.experts; ++e) {
      if (service->placement_.HostOfExpert(l, e) != config.host_index) continue;
      std::vector<float> init;
      AppendInit(infos, w_in, config.seed, e * C * F, (e + 1) * C * F, &init);
      AppendInit(infos, b_in, config.seed, e * F, (e + 1) * F, &init);
      AppendInit(infos, w_out, config.seed, e * F * C, (e + 1) * F * C, &init);
      AppendInit(infos, b_out, config.seed, e * C, (e + 1) * C, &init);
      std::vector<StateSegment> segments{{w_in, e, C * F, infos[w_in].decays},
                                         {b_in, e, F, infos[b_in].decays},
                                         {w_out, e, F * C, infos[w_out].decays},
                                         {b_out, e, C, infos[b_out].decays}};
      auto state = ParamState::Create(backend, std::move(segments), init, config.micro_batches, config.adam);
      if (!state.ok()) return state.status();
      ActorIdentity id{true, l, e, 0};
      auto a = std::make_shared<ParamActor>(service->runtime_, id, mc, *std::move(state), registry,
                                            config.checkpoint_every);
      service->experts_[{static_cast<uint32_t>(l), static_cast<uint32_t>(e)}] = a;
      all.push_back(a);
    }
  }
  service->shard_params_ = trainer::DenseShardParams(infos);
  for (size_t s = 0; s < service->shard_params_.size(); ++s) {
    if (service->placement_.HostOfDenseShard(static_cast<int>(s)) != config.host_index) continue;
    const uint32_t index = service->shard_params_[s];
    std::vector<float> init;
    AppendInit(infos, index, config.seed, 0, infos[index].numel, &init);
    auto state = ParamState::Create(backend, {{index, -1, infos[index].numel, infos[index].decays}}, init,
                                    config.micro_batches, config.adam);
    if (!state.ok()) return state.status();
    ActorIdentity id{false, 0, 0, static_cast<int>(s)};
    auto a = std::make_shared<ParamActor>(service->runtime_, id, mc, *std::move(state), registry,
                                            config.checkpoint_every);
    service->shards_[static_cast<uint32_t>(s)] = a;
    all.push_back(a);
  }
  service->step_ =
      std::make_shared<StepActor>(service->runtime_, std::move(all), config.micro_batches, config.step_timeout,
                                  registry);
  SY_LOG(INFO) << "host " << config.host_index << "/" << config.num_hosts << ": " << service->experts_.size()
               << " experts, " << service->shards_.size() << " dense shards, " << mc.DebugString();
  return service;
}

void HostService::Handle(transport::DecodedMessage request, transport::Responder responder) {
  const proto::MessageKind kind = request.envelope().getKind();
  registry_->GetCounter("sy_host_requests_total", "Requests received, by kind.", {{"kind", KindName(kind)}})
      .Increment();
  size_t bytes = request.message().ByteSize();
  registry_->GetCounter("sy_host_request_bytes_total", "Bytes of requests received.").Increment(bytes);
  absl::Status status;
  switch (kind) {
    case proto::MessageKind::EXPERT_FORWARD: status = HandleForward(request, responder); break;
    case proto::MessageKind::EXPERT_BACKWARD: status = HandleBackward(request, responder); break;
    case proto::MessageKind::PARAM_PUSH: status = HandlePush(request, responder); break;
    case proto::MessageKind::PARAM_PULL: status = HandlePull(request, responder); break;
    case proto::MessageKind::STEP_COMMIT: status = HandleStep(request, responder); break;
    case proto::MessageKind::PLACEMENT: status = HandlePlacement(request, responder); break;
    case proto::MessageKind::STATE_STREAM: status = HandleStateStream(request, responder); break;
    default:
      status = absl::UnimplementedError(absl::StrCat("expert host: message kind ", static_cast<int>(kind),
                                                     " is not served here"));
  }
  if (!status.ok()) {
    SY_LOG(DEBUG) << "rejected " << KindName(kind) << " from " << request.envelope().getSender().cStr() << ": "
                  << status;
    FailAndCount(registry_, responder, status);
  }
}

absl::StatusOr<std::shared_ptr<ParamActor>> HostService::Expert(uint32_t layer, uint32_t expert) const {
  const gpu::ModelConfig& mc = config_.model;
  if (layer >= static_cast<uint32_t>(mc.layers) || !mc.IsSwitchLayer(static_cast<int>(layer)) ||
      expert >= static_cast<uint32_t>(mc.experts)) {
    return absl::NotFoundError(absl::StrCat("unknown expert (layer ", layer, ", expert ", expert, ")"));
  }
  auto it = experts_.find({layer, expert});
  if (it == experts_.end()) {
    return absl::NotFoundError(absl::StrCat("expert (layer ", layer, ", expert ", expert, ") lives on host ",
                                            placement_.HostOfExpert(static_cast<int>(layer), static_cast<int>(expert)),
                                            ", not on host ", config_.host_index));
  }
  return it->second;
}

absl::StatusOr<std::shared_ptr<ParamActor>> HostService::Shard(uint32_t shard) const {
  if (shard >= shard_params_.size()) return absl::NotFoundError(absl::StrCat("unknown dense shard ", shard));
  auto it = shards_.find(shard);
  if (it == shards_.end()) {
    return absl::NotFoundError(absl::StrCat("dense shard ", shard, " lives on host ",
                                            placement_.HostOfDenseShard(static_cast<int>(shard)), ", not on host ",
                                            config_.host_index));
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
  if (absl::Status s = trainer::DecodeFloats(request.data(0), *dtype, static_cast<int64_t>(values.size()),
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
  absl::StatusOr<coordinator::DecodedTable> table = coordinator::TableFromProto(body->getUpdate());
  if (!table.ok()) return table.status();
  const std::string me = absl::StrCat("host-", config_.host_index);
  std::vector<int> model_layer;  // Switch layer index -> model layer
  for (int l = 0; l < config_.model.layers; ++l) {
    if (config_.model.IsSwitchLayer(l)) model_layer.push_back(l);
  }
  size_t mine = 0;
  for (const auto& [actor, hosts] : table->entries) {
    if (std::find(hosts.begin(), hosts.end(), me) == hosts.end()) continue;
    ++mine;
    const bool held = actor.dense ? shards_.count(actor.shard) > 0
                                  : actor.layer < model_layer.size() &&
                                        experts_.count({static_cast<uint32_t>(model_layer[actor.layer]), actor.expert}) > 0;
    if (!held) {
      return absl::FailedPreconditionError(absl::StrCat("placement epoch ", table->epoch, " puts ", actor.ToString(),
                                                        " on ", me, ", which does not hold it (moving actors between "
                                                        "hosts is not served yet)"));
    }
  }
  if (mine != experts_.size() + shards_.size()) {
    return absl::FailedPreconditionError(absl::StrCat("placement epoch ", table->epoch, " places ", mine,
                                                      " actors on ", me, ", which holds ",
                                                      experts_.size() + shards_.size()));
  }
  placement_epoch_.store(table->epoch);
  capnp::MallocMessageBuilder b;
  coordinator::InitBody<proto::coordinator::PlacementReply>(b, proto::MessageKind::PLACEMENT).setEpoch(table->epoch);
  responder.Reply(b);
  return absl::OkStatus();
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
  if (bucket.getMicroBatch() >= static_cast<uint32_t>(config_.micro_batches)) {
    return absl::InvalidArgumentError(absl::StrCat("micro-batch ", bucket.getMicroBatch(), " outside [0, ",
                                                   config_.micro_batches, ")"));
  }
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
  if (bucket.getMicroBatch() >= static_cast<uint32_t>(config_.micro_batches)) {
    return absl::InvalidArgumentError(absl::StrCat("micro-batch ", bucket.getMicroBatch(), " outside [0, ",
                                                   config_.micro_batches, ")"));
  }
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
  if (absl::Status s = trainer::DecodeFloats(request.data(0), proto::DType::F32, numel, m.grad.data()); !s.ok()) {
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
      for (auto s : body->getStats()) m.stats.push_back(trainer::StatsFromWire(s));
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

}  // namespace sy::expert_host
