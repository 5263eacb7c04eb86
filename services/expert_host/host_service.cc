// An expert host's entry point: requests counted, checked for a stale placement epoch,
// then routed by kind through the door to the actor that serves them (see host_service.h).
#include "services/expert_host/host_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/transport/refusals.h"
#include "common/log/log.h"
#include "proto/coordinator.capnp.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"
#include "services/cluster/peer_roles.h"
#include "services/expert_host/host_metrics.h"

namespace sy::expert_host {
namespace {

const char* KindName(proto::MessageKind kind) {
  switch (kind) {
    case proto::MessageKind::EXPERT_FORWARD: return "expert_forward";
    case proto::MessageKind::EXPERT_BACKWARD: return "expert_backward";
    case proto::MessageKind::PARAM_PUSH: return "param_push";
    case proto::MessageKind::PARAM_PULL: return "param_pull";
    case proto::MessageKind::STEP_COMMIT: return "step_commit";
    case proto::MessageKind::REPLICA_GRADIENTS: return "replica_gradients";
    case proto::MessageKind::LIVE_STATE: return "live_state";
    default: return "other";
  }
}

// The data path and the step protocol act on a placement: they carry its epoch.
bool CarriesPlacementEpoch(proto::MessageKind kind) {
  switch (kind) {
    case proto::MessageKind::EXPERT_FORWARD:
    case proto::MessageKind::EXPERT_BACKWARD:
    case proto::MessageKind::PARAM_PUSH:
    case proto::MessageKind::PARAM_PULL:
    case proto::MessageKind::STEP_COMMIT:
    case proto::MessageKind::REPLICA_GRADIENTS:
      return true;
    default:
      return false;
  }
}

// A step status query reads versions and checksums and changes nothing: it is served
// whatever epoch it carries (tools and tests ask without a table).
bool IsStatusQuery(proto::MessageKind kind, const transport::DecodedMessage& request) {
  if (kind != proto::MessageKind::STEP_COMMIT) return false;
  auto body = request.Body<proto::expert::StepRequest>();
  return body.ok() && body->which() == proto::expert::StepRequest::STATUS;
}

// What a request costs the budget besides its values: the responder, the message's
// envelope and the actor's bookkeeping.
constexpr size_t kRequestOverheadBytes = 1024;
// Room beside a frame's payload for ZeroMQ's and CURVE's framing.
constexpr int64_t kFrameHeadroomBytes = 64 << 10;

// The request budget of `config`'s host: its limits, with room for several of the
// largest legitimate requests whatever the model.
actor::RequestBudget::Limits SizedRequestLimits(const HostConfig& config, int64_t largest_frame) {
  actor::RequestBudget::Limits limits;
  limits.max_requests = config.limits.requests.max_requests;
  limits.max_bytes = std::max(config.limits.requests.max_bytes, static_cast<size_t>(4 * largest_frame));
  return limits;
}

}  // namespace

HostService::HostService(const HostConfig& config, gpu::Backend* backend, metrics::Registry* registry)
    : config_(config),
      registry_(registry),
      model_(config.model, config.seed, config.num_hosts),
      door_(config, &model_),
      budget_("the expert host", SizedRequestLimits(config, LargestRequestFrame())),
      device_(config.emulate_device_gflops > 0 ? std::make_unique<EmulatedDevice>(&runtime_, config.emulate_device_gflops)
                                               : nullptr),
      factory_(config, &model_, backend, &runtime_, registry, device_.get()),
      held_(&model_, config.host_index),
      replicas_(absl::StrCat("host-", config.host_index), config.step_timeout, &runtime_),
      restoring_(config.limits.max_concurrent_restores, config.limits.restore_idle),
      arriving_(config.limits.max_concurrent_restores, config.limits.restore_idle) {}

int64_t HostService::LargestRequestFrame() const {
  const int64_t bucket = static_cast<int64_t>(config_.max_bucket_rows) * config_.model.d_model * 4;
  // A restore chunk is at most one whole state; a gradient is a third of one.
  const int64_t state = ModelActors::StateBytesOfSize(model_.LargestSize());
  return std::max(bucket, state) + kFrameHeadroomBytes;
}

absl::Status HostService::CheckStepWindow(uint64_t step, const char* what) const {
  // Live moves: their boundary is in reach (a joining host is there as its actors arrive).
  const uint64_t applied = std::max(step_->applied_version(), held_.live_grace().last_step);
  if (step <= applied + config_.limits.step_window) return absl::OkStatus();
  return transport::Refuse(registry_, "step_window",
                 absl::OutOfRangeError(absl::StrCat(what, " of step ", step, " is too far ahead: the host applied step ",
                                                    applied, " and serves steps up to ",
                                                    applied + config_.limits.step_window)));
}

absl::StatusOr<actor::RequestBudget::Ticket> HostService::Admit(size_t values) {
  absl::StatusOr<actor::RequestBudget::Ticket> ticket =
      budget_.TryTake(values * sizeof(float) + kRequestOverheadBytes);
  if (!ticket.ok()) return transport::Refuse(registry_, "requests_held", ticket.status());
  return ticket;
}

HostService::~HostService() {
  runtime_.Shutdown(actor::Runtime::ShutdownMode::kCancel);
  placement_.reset();
  step_.reset();
  held_.Clear();
}

absl::StatusOr<std::unique_ptr<HostService>> HostService::Create(const HostConfig& config, gpu::Backend* backend,
                                                                  metrics::Registry* registry) {
  if (absl::Status s = config.model.Validate(); !s.ok()) return s;
  if (config.num_hosts < 1 || config.host_index < 0 || config.host_index >= config.num_hosts) {
    return absl::InvalidArgumentError(
        absl::StrCat("host index ", config.host_index, " outside [0, ", config.num_hosts, ")"));
  }
  std::unique_ptr<HostService> service(new HostService(config, backend, registry));
  for (const cluster::ActorKey& key : service->model_.StaticShare(config.host_index)) {
    absl::StatusOr<std::shared_ptr<ParamActor>> actor = service->factory_.Build(key, /*awaiting_restore=*/false);
    if (!actor.ok()) return actor.status();
    service->held_.Add(key, *std::move(actor));
  }
  service->step_ = std::make_shared<StepActor>(service->runtime_, service->held_.All(), config.micro_batches,
                                               config.step_timeout, registry);
  service->placement_ =
      std::make_shared<PlacementActor>(service->runtime_, absl::StrCat("host-", config.host_index), &service->factory_,
                                       &service->held_, service->step_, &service->replicas_, &service->arriving_, registry,
                                       config.kill_self_in_live_move == "source");
  SY_LOG(INFO) << "host " << config.host_index << "/" << config.num_hosts << ": " << service->num_experts()
               << " experts, " << service->num_shards() << " dense shards, " << config.model.DebugString();
  return service;
}

void HostService::set_coordinator_link(cluster::CoordinatorLink* link) {
  absl::MutexLock lock(&coordinator_mu_);
  coordinator_ = link;
}

void HostService::Handle(transport::DecodedMessage request, transport::Responder responder) {
  const proto::MessageKind kind = request.envelope().getKind();
  registry_->GetCounter("sy_host_requests_total", "Requests received, by kind.", {{"kind", KindName(kind)}})
      .Increment();
  registry_->GetCounter("sy_host_request_bytes_total", "Bytes of requests received.")
      .Increment(request.message().ByteSize());
  absl::Status status = cluster::CheckSenderRole(cluster::Door::kHost, kind, request.message(), registry_);
  if (status.ok() && CarriesPlacementEpoch(kind) && !IsStatusQuery(kind, request)) status = CheckEpoch(request);
  if (status.ok()) status = Dispatch(kind, request, responder);
  if (!status.ok()) {
    SY_LOG(DEBUG) << "rejected " << KindName(kind) << " from " << request.envelope().getSender().cStr() << ": "
                  << status;
    FailAndCount(registry_, responder, status);
  }
}

absl::Status HostService::Dispatch(proto::MessageKind kind, const transport::DecodedMessage& request,
                                   transport::Responder responder) {
  switch (kind) {
    case proto::MessageKind::EXPERT_FORWARD: return HandleForward(request, responder);
    case proto::MessageKind::EXPERT_BACKWARD: return HandleBackward(request, responder);
    case proto::MessageKind::PARAM_PUSH: return HandlePush(request, responder);
    case proto::MessageKind::PARAM_PULL: return HandlePull(request, responder);
    case proto::MessageKind::STEP_COMMIT: return HandleStep(request, responder);
    case proto::MessageKind::PLACEMENT: return HandlePlacement(request, responder);
    case proto::MessageKind::STATE_STREAM: return HandleStateStream(request, responder);
    case proto::MessageKind::REPLICA_GRADIENTS: return HandleReplicaGradients(request, responder);
    case proto::MessageKind::LIVE_STATE: return HandleLiveState(request, responder);
    case proto::MessageKind::PING: {  // the coordinator's liveness probe: answered at once
      capnp::MallocMessageBuilder b;
      b.initRoot<proto::Envelope>().setKind(proto::MessageKind::PING);
      responder.Reply(b);
      return absl::OkStatus();
    }
    default:
      return absl::UnimplementedError(
          absl::StrCat("expert host: message kind ", static_cast<int>(kind), " is not served here"));
  }
}

absl::Status HostService::CheckEpoch(const transport::DecodedMessage& request) {
  uint64_t told = 0;
  bool has_coordinator = false;
  {
    absl::MutexLock lock(&coordinator_mu_);
    if (coordinator_ != nullptr) {
      has_coordinator = true;
      told = coordinator_->epoch();
    }
  }
  absl::Status status = RequestDoor::CheckEpoch(request, std::max(held_.epoch(), told), has_coordinator);
  // The table before a live move serves its steps until this host applied the move's last step.
  const HeldActors::LiveGrace grace = held_.live_grace();
  if (!status.ok() && grace.last_step > 0 && request.envelope().getPlacementEpoch() >= grace.previous_epoch &&
      step_->applied_version() < grace.last_step) {
    return absl::OkStatus();
  }
  return status;
}

void HostService::Fence(uint64_t epoch) {
  SY_LOG(WARNING) << "host " << config_.host_index << " was declared failed (placement epoch " << epoch
                  << "): dropping its " << held_.All().size() << " actors to join again as a new host";
  PlaceMsg none;  // no actors: everything leaves
  none.epoch = std::max(epoch, held_.epoch());
  placement_->Tell(std::move(none));
}

void HostService::NoteStep(uint64_t step) {
  if (step > step_->applied_version() + 1) return;  // not open before the step ahead of it closes
  uint64_t seen = highest_step_seen_.load();
  while (step > seen) {
    if (highest_step_seen_.compare_exchange_weak(seen, step)) {
      step_->Tell(StepSeenMsg{step});
      return;
    }
  }
}

void HostService::RollBackTo(uint64_t version) {
  uint64_t seen = highest_step_seen_.load();
  while (seen > version && !highest_step_seen_.compare_exchange_weak(seen, version)) {
  }
  step_->Tell(RollbackMsg{version});
}

absl::Status HostService::HandleForward(const transport::DecodedMessage& request,
                                        transport::Responder responder) {
  auto body = request.Body<proto::expert::ExpertForwardRequest>();
  if (!body.ok()) return body.status();
  auto actor = held_.Expert(body->getBucket().getLayer(), body->getBucket().getExpert());
  if (!actor.ok()) return actor.status();
  absl::StatusOr<ForwardMsg> forward = door_.Forward(request, *body, responder);
  if (!forward.ok()) return forward.status();
  // An evaluation forward waits for its version like a request of the step after it.
  if (absl::Status s = CheckStepWindow(forward->training ? forward->step : forward->version + 1, "forward"); !s.ok()) {
    return s;
  }
  absl::StatusOr<actor::RequestBudget::Ticket> ticket = Admit(forward->in.size());
  if (!ticket.ok()) return ticket.status();
  forward->ticket = *std::move(ticket);
  if (forward->training) NoteStep(forward->step);
  (*actor)->Tell(*std::move(forward));
  return absl::OkStatus();
}

absl::Status HostService::HandleBackward(const transport::DecodedMessage& request,
                                         transport::Responder responder) {
  auto body = request.Body<proto::expert::ExpertBackwardRequest>();
  if (!body.ok()) return body.status();
  auto actor = held_.Expert(body->getBucket().getLayer(), body->getBucket().getExpert());
  if (!actor.ok()) return actor.status();
  absl::StatusOr<BackwardMsg> backward = door_.Backward(request, *body, responder);
  if (!backward.ok()) return backward.status();
  if (absl::Status s = CheckStepWindow(backward->step, "backward"); !s.ok()) return s;
  absl::StatusOr<actor::RequestBudget::Ticket> ticket = Admit(backward->dout.size());
  if (!ticket.ok()) return ticket.status();
  backward->ticket = *std::move(ticket);
  (*actor)->Tell(*std::move(backward));
  return absl::OkStatus();
}

absl::Status HostService::HandlePush(const transport::DecodedMessage& request, transport::Responder responder) {
  auto body = request.Body<proto::parameter::PushRequest>();
  if (!body.ok()) return body.status();
  auto actor = held_.Shard(body->getShard());
  if (!actor.ok()) return actor.status();
  absl::StatusOr<PushMsg> push = door_.Push(request, *body, responder);
  if (!push.ok()) return push.status();
  if (absl::Status s = CheckStepWindow(push->step, "push"); !s.ok()) return s;
  absl::StatusOr<actor::RequestBudget::Ticket> ticket = Admit(push->grad.size());
  if (!ticket.ok()) return ticket.status();
  push->ticket = *std::move(ticket);
  NoteStep(push->step);
  (*actor)->Tell(*std::move(push));
  return absl::OkStatus();
}

absl::Status HostService::HandlePull(const transport::DecodedMessage& request, transport::Responder responder) {
  auto body = request.Body<proto::parameter::PullRequest>();
  if (!body.ok()) return body.status();
  auto actor = body->getTarget() == proto::parameter::PullTarget::EXPERT
                   ? held_.Expert(body->getExpertLayer(), body->getExpertIndex())
                   : held_.Shard(body->getShard());
  if (!actor.ok()) return actor.status();
  absl::StatusOr<PullMsg> pull = RequestDoor::Pull(request, *body, responder);
  if (!pull.ok()) return pull.status();
  if (absl::Status s = CheckStepWindow(pull->version + 1, "pull"); !s.ok()) return s;
  absl::StatusOr<actor::RequestBudget::Ticket> ticket = Admit(0);
  if (!ticket.ok()) return ticket.status();
  pull->ticket = *std::move(ticket);
  (*actor)->Tell(*std::move(pull));
  return absl::OkStatus();
}

absl::Status HostService::HandleStep(const transport::DecodedMessage& request, transport::Responder responder) {
  auto body = request.Body<proto::expert::StepRequest>();
  if (!body.ok()) return body.status();
  absl::StatusOr<StepActorMsg> step = door_.Step(*body, held_, responder);
  if (!step.ok()) return step.status();
  if (const auto* apply = std::get_if<StepApplyMsg>(&*step);
      apply != nullptr && config_.kill_self_at_apply_of_step == apply->step) {
    SY_LOG(WARNING) << "--kill_self_at_apply_of_step: SIGKILL at the apply of step " << apply->step;
    raise(SIGKILL);
  }
  step_->Tell(*std::move(step));
  return absl::OkStatus();
}

absl::Status HostService::HandlePlacement(const transport::DecodedMessage& request,
                                          transport::Responder responder) {
  auto body = request.Body<proto::coordinator::PlacementRequest>();
  if (!body.ok()) return body.status();
  absl::StatusOr<PlaceMsg> place = door_.Placement(*body, responder);
  if (!place.ok()) return place.status();
  // Built and swapped on the runtime's thread (the backend's), one table at a time.
  placement_->Tell(*std::move(place));
  return absl::OkStatus();
}

absl::Status HostService::HandleReplicaGradients(const transport::DecodedMessage& request,
                                                 transport::Responder responder) {
  auto body = request.Body<proto::expert::ReplicaGradientsRequest>();
  if (!body.ok()) return body.status();
  // The actor checks that the named sender holds a replica; here, that an authenticated
  // peer names itself (one host's key may not deliver another host's contributions).
  if (absl::Status s = cluster::CheckSenderIsNode(body->getSender().cStr(), request.message(), registry_); !s.ok()) {
    return s;
  }
  absl::StatusOr<cluster::ActorKey> key = cluster::ActorKey::FromProto(body->getActor());
  if (!key.ok()) return key.status();
  if (absl::Status s = model_.CheckKey(*key); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<ParamActor>> actor = held_.Held(*key);
  if (!actor.ok()) return actor.status();
  absl::StatusOr<PeerGradientsMsg> gradients = door_.ReplicaGradients(request, *body, *key, responder);
  if (!gradients.ok()) return gradients.status();
  if (absl::Status s = CheckStepWindow(gradients->step, "replica gradients"); !s.ok()) return s;
  absl::StatusOr<actor::RequestBudget::Ticket> ticket =
      Admit(gradients->grads.size() * static_cast<size_t>(model_.Size(*key)));
  if (!ticket.ok()) return ticket.status();
  gradients->ticket = *std::move(ticket);
  (*actor)->Tell(*std::move(gradients));
  return absl::OkStatus();
}

}  // namespace sy::expert_host
