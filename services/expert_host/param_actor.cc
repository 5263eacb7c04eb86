// An expert or dense-shard actor (see param_actor.h).
#include "services/expert_host/param_actor.h"

#include <algorithm>
#include <chrono>
#include <type_traits>

#include <capnp/message.h>

#include "absl/strings/str_cat.h"
#include "common/transport/refusals.h"
#include "common/log/log.h"
#include "common/transport/envelope_codec.h"
#include "gpu/model/bucket_codec.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/step_wire.h"
#include "services/expert_host/host_metrics.h"

namespace sy::expert_host {
namespace {

uint64_t Uint(int64_t x) { return static_cast<uint64_t>(x); }

// False for every M: fails a static_assert in the branch no message type may reach.
template <class M>
constexpr bool kUnhandled = false;

}  // namespace

std::string ActorIdentity::Name() const {
  return is_expert ? absl::StrCat("expert(layer ", layer, ", expert ", expert, ")") : absl::StrCat("shard ", shard);
}

ParamActor::ParamActor(actor::Executor& executor, ActorIdentity id, const gpu::ModelConfig& config,
                       std::unique_ptr<ParamState> state, metrics::Registry* registry, uint64_t checkpoint_every,
                       bool awaiting_restore, ParkingLimits parking, EmulatedDevice* device)
    : Actor(executor,
            id.is_expert ? absl::StrCat("expert-", id.layer, "-", id.expert) : absl::StrCat("shard-", id.shard),
            registry),
      id_(id),
      config_(config),
      state_(std::move(state)),
      segments_(state_->segments()),
      buckets_(config, id.layer, id.expert),
      device_(device),
      parking_(parking),
      checkpoint_every_(checkpoint_every),
      registry_(registry) {
  if (awaiting_restore) {
    Become("restoring", [this](ParamActorMsg& msg) { HandleAwaitingRestore(msg); });
  } else {
    Become("serving", [this](ParamActorMsg& msg) { Handle(msg); });
  }
}

void ParamActor::HandleAwaitingRestore(ParamActorMsg& msg) {
  const absl::Status restoring = absl::UnavailableError(
      absl::StrCat(id_.Name(), " is being restored (placed on this host at runtime; its state is not loaded yet)"));
  std::visit(
      [&](auto& m) {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, RestoreMsg>) {
          OnRestore(m);
        } else if constexpr (std::is_same_v<M, StatusMsg>) {
          OnStatus(m);
        } else if constexpr (kIsParamActorRequest<M> || std::is_same_v<M, FinalizeMsg> || std::is_same_v<M, ApplyMsg> ||
                             std::is_same_v<M, SnapshotMsg>) {
          // A live move's state is on its way: wait for it; a restore's: refuse.
          if (live_version_.has_value()) {
            WaitForLiveInstall(msg);
          } else if constexpr (kIsParamActorRequest<M>) {
            Refuse(m.responder, restoring);
          } else {
            m.done(restoring);
          }
        } else if constexpr (std::is_same_v<M, ReplicasMsg>) {
          SetReplicas(m);
        } else if constexpr (std::is_same_v<M, RemovedMsg>) {
          DropLiveWaiters(absl::NotFoundError(m.why));
        } else if constexpr (std::is_same_v<M, MoveOutMsg>) {
          m.done(restoring);
        } else if constexpr (std::is_same_v<M, ExpectLiveMsg>) {
          live_version_ = m.version;
        } else if constexpr (std::is_same_v<M, LiveInstallMsg>) {
          OnLiveInstall(m);
        } else if constexpr (std::is_same_v<M, DropStepMsg>) {
          // No step is open on an actor waiting for its state.
        } else {
          static_assert(kUnhandled<M>, "ParamActor: a message the restoring behavior does not handle");
        }
      },
      msg);
}

void ParamActor::OnRestore(RestoreMsg& m) {
  absl::Status s = state_->LoadState(m.version, m.bytes);
  if (s.ok()) {
    snapshots_.erase(snapshots_.upper_bound(m.version), snapshots_.end());
    // The abandoned timeline's requests: the trainers roll back and send them again.
    buckets_.Clear();
    const absl::Status rolled_back = absl::AbortedError(absl::StrCat(
        id_.Name(), ": rolled back to step ", m.version, " (checkpoint restore); replay from step ", m.version + 1));
    ResetReplicaStep(rolled_back);
    DropLiveWaiters(rolled_back);  // parked requests, and a live move into this host: given up
    if (move_out_) move_out_->done(rolled_back);
    move_out_.reset();
    TakePendingReplicas(/*now=*/true);
    restored_to_ = m.version;
    Become("serving", [this](ParamActorMsg& msg) { Handle(msg); });
  }
  m.done(s);
}

void ParamActor::DropOpenStep() {
  const absl::Status dropped = absl::AbortedError(absl::StrCat(
      id_.Name(), ": step ", state_->version() + 1, " was dropped (a host failed over): the trainers redo it"));
  state_->DropOpenStep();
  buckets_.Clear();
  ResetReplicaStep(dropped);
  FailParked(dropped, absl::InfiniteFuture());
}

void ParamActor::OnStatus(StatusMsg& m) {
  absl::StatusOr<uint64_t> checksum = state_->Checksum();
  if (!checksum.ok()) {
    m.done(checksum.status());
    return;
  }
  const cluster::ActorKey key = id_.is_expert ? cluster::ActorKey::Expert(static_cast<uint32_t>(id_.switch_layer),
                                                                         static_cast<uint32_t>(id_.expert))
                                              : cluster::ActorKey::Dense(static_cast<uint32_t>(id_.shard));
  m.done(ActorStatusValue{key, state_->version(), *checksum, static_cast<uint32_t>(state_->contributions())});
}

void ParamActor::Handle(ParamActorMsg& msg) {
  std::visit(
      [&](auto& m) {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, ForwardMsg>) {
          if (!ParkIfAhead(m.version, msg, m.deadline)) OnForward(m);
        } else if constexpr (std::is_same_v<M, BackwardMsg>) {
          if (!ParkIfAhead(m.version, msg, m.deadline)) OnBackward(m);
        } else if constexpr (std::is_same_v<M, PushMsg>) {
          if (!ParkIfAhead(m.step - 1, msg, m.deadline)) OnPush(m);
        } else if constexpr (std::is_same_v<M, PullMsg>) {
          if (!ParkIfAhead(m.version, msg, m.deadline)) OnPull(m);
        } else if constexpr (std::is_same_v<M, PeerGradientsMsg>) {
          if (!ParkIfAhead(m.step - 1, msg, m.deadline)) OnPeerGradients(m);
        } else if constexpr (std::is_same_v<M, SnapshotMsg>) {
          if (!ParkIfAhead(m.version, msg, m.deadline)) OnSnapshot(m);
        } else if constexpr (std::is_same_v<M, FinalizeMsg>) {
          OnFinalize(m);
        } else if constexpr (std::is_same_v<M, ApplyMsg>) {
          OnApply(m);
        } else if constexpr (std::is_same_v<M, ReplicasMsg>) {
          SetReplicas(m);
        } else if constexpr (std::is_same_v<M, RestoreMsg>) {
          OnRestore(m);
        } else if constexpr (std::is_same_v<M, StatusMsg>) {
          OnStatus(m);
        } else if constexpr (std::is_same_v<M, MoveOutMsg>) {
          OnMoveOut(m);
        } else if constexpr (std::is_same_v<M, ExpectLiveMsg>) {
          SY_LOG(WARNING) << id_.Name() << ": a live move to this host, but the actor already serves here";
        } else if constexpr (std::is_same_v<M, LiveInstallMsg>) {
          m.done(absl::FailedPreconditionError(absl::StrCat(id_.Name(), " already serves here: live state refused")));
        } else if constexpr (std::is_same_v<M, RemovedMsg>) {
          buckets_.Clear();
          ResetReplicaStep(absl::NotFoundError(m.why));
          FailParked(absl::NotFoundError(m.why), absl::InfiniteFuture());
        } else if constexpr (std::is_same_v<M, DropStepMsg>) {
          DropOpenStep();
        } else {
          static_assert(kUnhandled<M>, "ParamActor: a message the serving behavior does not handle");
        }
      },
      msg);
}

void ParamActor::OnSnapshot(SnapshotMsg& m) {
  if (m.version == state_->version()) {
    m.done(state_->SaveState());
    return;
  }
  auto kept = snapshots_.find(m.version);
  if (kept == snapshots_.end()) {
    m.done(Stale(m.version, "snapshot"));
    return;
  }
  m.done(kept->second);
}

bool ParamActor::ParkIfAhead(uint64_t wanted_version, ParamActorMsg& msg, absl::Time deadline) {
  if (wanted_version <= state_->version()) return false;
  if (parked_.size() >= parking_.max_parked) {
    FailParkable(msg, transport::Refuse(registry_, "parked_per_actor",
                              absl::ResourceExhaustedError(absl::StrCat(
                                  id_.Name(), ": ", parked_.size(), " requests already wait for a newer version (at most ",
                                  parking_.max_parked, "); refused one for version ", wanted_version))));
    return true;
  }
  parked_.push_back({std::min(deadline, absl::Now() + parking_.max_wait), std::move(msg)});
  ArmExpiryTimer();
  return true;
}

void ParamActor::ArmExpiryTimer() {
  if (expiry_timer_ || parked_.empty()) return;
  expiry_timer_ = true;
  After(std::chrono::milliseconds(250), [this] {
    expiry_timer_ = false;
    OnExpire();
  });
}

absl::Status ParamActor::Stale(uint64_t wanted_version, const char* what) const {
  return absl::FailedPreconditionError(absl::StrCat(id_.Name(), ": stale step: ", what, " for version ",
                                                    wanted_version, ", the actor is at version ", state_->version()));
}

void ParamActor::OnExpire() {
  FailParked(absl::DeadlineExceededError(absl::StrCat(
                 id_.Name(), ": request waited past its deadline for a newer version (actor at version ",
                 state_->version(), ")")),
             absl::Now());
  ArmExpiryTimer();
}

void ParamActor::FailParked(const absl::Status& expired, absl::Time now) {
  std::deque<Parked> keep;
  for (Parked& p : parked_) {
    if (p.deadline > now) {
      keep.push_back(std::move(p));
      continue;
    }
    FailParkable(p.msg, expired);
  }
  parked_ = std::move(keep);
}

void ParamActor::FailParkable(ParamActorMsg& msg, const absl::Status& status) {
  std::visit(
      [&](auto& m) {
        using M = std::decay_t<decltype(m)>;
        if constexpr (kIsParamActorRequest<M>) {
          Refuse(m.responder, status);
        } else if constexpr (std::is_same_v<M, SnapshotMsg>) {
          m.done(status);
        } else {
          SY_LOG(FATAL) << id_.Name() << ": a parked message that ParkIfAhead never parks";
        }
      },
      msg);
}

void ParamActor::RedispatchParked() {
  std::deque<Parked> parked = std::move(parked_);
  parked_.clear();
  for (Parked& p : parked) Handle(p.msg);
}

void ParamActor::Refuse(transport::Responder& responder, const absl::Status& status) {
  FailAndCount(registry_, responder, status);
}

void ParamActor::OnForward(ForwardMsg& m) {
  if (!id_.is_expert) {
    Refuse(m.responder, absl::InvalidArgumentError(absl::StrCat(id_.Name(), " is not an expert")));
    return;
  }
  if (m.version < state_->version()) {
    Refuse(m.responder, Stale(m.version, "forward"));
    return;
  }
  if (m.training && (state_->finalized() || buckets_.KeptRows(m.micro_batch).has_value())) {
    Refuse(m.responder, absl::FailedPreconditionError(absl::StrCat(
        id_.Name(), ": forward of step ", m.step, " micro-batch ", m.micro_batch,
        state_->finalized() ? ": the step is closed" : ": this micro-batch already ran forward")));
    return;
  }
  const DeviceBooking booking(device_, ExpertBucketFlops(m.rows, config_.d_model, config_.d_ff, false));
  absl::StatusOr<transport::Frame> outputs = buckets_.Forward(*state_, m);
  if (!outputs.ok()) {
    Refuse(m.responder, outputs.status());
    return;
  }
  auto header = std::make_unique<capnp::MallocMessageBuilder>();
  auto env = cluster::InitEnvelope(*header, proto::MessageKind::EXPERT_FORWARD);
  auto body = env.initBody().initAs<proto::expert::ExpertForwardReply>();
  SetBucket(body.initBucket(), m.step, m.micro_batch);
  body.setTokenCount(static_cast<uint32_t>(m.rows));
  body.setVersion(state_->version());
  transport::SetTensor(env.initTensors(1)[0], "outputs", proto::TensorRole::OUTPUTS, m.dtype,
                       {Uint(m.rows), Uint(config_.d_model)});
  booking.Send({std::move(m.responder), std::move(header), {*std::move(outputs)}});
}

void ParamActor::SetBucket(proto::expert::BucketId::Builder bucket, uint64_t step, uint32_t micro_batch) const {
  bucket.setStep(step);
  bucket.setMicroBatch(micro_batch);
  bucket.setLayer(static_cast<uint32_t>(id_.layer));
  bucket.setExpert(static_cast<uint32_t>(id_.expert));
}

void ParamActor::OnBackward(BackwardMsg& m) {
  if (m.version < state_->version()) {
    Refuse(m.responder, Stale(m.version, "backward"));
    return;
  }
  const std::optional<int> kept_rows = buckets_.KeptRows(m.micro_batch);
  if (!kept_rows && restored_to_ == state_->version()) {
    Refuse(m.responder, absl::AbortedError(absl::StrCat(id_.Name(), ": backward of step ", m.step, " micro-batch ",
                                                        m.micro_batch, ": rolled back to step ", state_->version(),
                                                        " (checkpoint restore) since its forward; replay")));
    return;
  }
  if (!kept_rows) {
    Refuse(m.responder, absl::FailedPreconditionError(absl::StrCat(
        id_.Name(), ": backward of step ", m.step, " micro-batch ", m.micro_batch, " without its forward")));
    return;
  }
  if (*kept_rows != m.rows) {
    Refuse(m.responder, absl::InvalidArgumentError(absl::StrCat(id_.Name(), ": backward has ", m.rows,
                                                             " rows, its forward had ", *kept_rows)));
    return;
  }
  const DeviceBooking booking(device_, ExpertBucketFlops(m.rows, config_.d_model, config_.d_ff, true));
  absl::StatusOr<ExpertBuckets::Gradients> grads = buckets_.Backward(*state_, m);
  absl::Status status = grads.status();
  if (status.ok()) status = state_->AddContribution(static_cast<int>(m.micro_batch), grads->weights.data());
  if (status.ok()) KeepOwn(m.micro_batch, grads->weights.data());
  absl::StatusOr<transport::Frame> input_grad = status.ok() ? grads->din.ToFrame(m.dtype) : status;
  if (!input_grad.ok()) {
    Refuse(m.responder, input_grad.status());
    return;
  }
  buckets_.Drop(m.micro_batch);
  auto header = std::make_unique<capnp::MallocMessageBuilder>();
  auto env = cluster::InitEnvelope(*header, proto::MessageKind::EXPERT_BACKWARD);
  auto body = env.initBody().initAs<proto::expert::ExpertBackwardReply>();
  SetBucket(body.initBucket(), m.step, m.micro_batch);
  body.setTokenCount(static_cast<uint32_t>(m.rows));
  transport::SetTensor(env.initTensors(1)[0], "inputGrad", proto::TensorRole::INPUT_GRAD, m.dtype,
                       {Uint(m.rows), Uint(config_.d_model)});
  booking.Send({std::move(m.responder), std::move(header), {*std::move(input_grad)}});
}

void ParamActor::OnPush(PushMsg& m) {
  if (id_.is_expert) {
    Refuse(m.responder, absl::InvalidArgumentError(absl::StrCat(id_.Name(), " is not a dense shard")));
    return;
  }
  if (m.step - 1 < state_->version() || m.step == 0) {
    Refuse(m.responder, Stale(m.step - 1, "push"));
    return;
  }
  gpu::Backend* backend = state_->backend();
  absl::StatusOr<DeviceArray> grad = DeviceArray::Create(backend, state_->size());
  absl::Status status = grad.status();
  if (status.ok()) status = backend->CopyHostToDevice(grad->data(), m.grad.data(), m.grad.size() * sizeof(float));
  if (status.ok()) {
    status = state_->AddContribution(static_cast<int>(m.micro_batches.first), static_cast<int>(m.micro_batches.end),
                                     grad->data(), m.bf16);
  }
  if (!status.ok()) {
    Refuse(m.responder, status);
    return;
  }
  if (!replica_peers_.empty()) own_grads_[m.micro_batches.first] = {m.micro_batches, std::move(m.grad)};
  capnp::MallocMessageBuilder header;
  auto env = cluster::InitEnvelope(header, proto::MessageKind::PARAM_PUSH);
  auto body = env.initBody().initAs<proto::parameter::PushReply>();
  body.setShard(static_cast<uint32_t>(id_.shard));
  body.setStep(m.step);
  body.setApplied(false);
  m.responder.Reply(header);
}

void ParamActor::OnPull(PullMsg& m) {
  absl::StatusOr<transport::Frame> values =
      gpu::EncodeDeviceFloats(state_->backend(), state_->params(), state_->size(), m.dtype);
  if (!values.ok()) {
    Refuse(m.responder, values.status());
    return;
  }
  const uint64_t count = static_cast<uint64_t>(state_->size());
  capnp::MallocMessageBuilder header;
  auto env = cluster::InitEnvelope(header, proto::MessageKind::PARAM_PULL);
  auto body = env.initBody().initAs<proto::parameter::PullReply>();
  body.setShard(static_cast<uint32_t>(id_.shard));
  body.setVersion(state_->version());
  body.setElementCount(count);
  transport::SetTensor(env.initTensors(1)[0], "parameters", proto::TensorRole::PARAMETERS, m.dtype, {count});
  m.responder.Reply(header, {*std::move(values)});
}

void ParamActor::OnApply(ApplyMsg& m) {
  if (m.step <= state_->version()) {  // a repeated apply: already done
    m.done(absl::OkStatus());
    return;
  }
  absl::Status s = state_->Apply(m.step, m.clip_scale, m.lr);
  if (s.ok()) {
    restored_to_.reset();
    ResetReplicaStep(absl::OkStatus());
  }
  if (s.ok() && checkpoint_every_ > 0 && m.step % checkpoint_every_ == 0) {
    absl::StatusOr<std::string> snapshot = state_->SaveState();
    if (snapshot.ok()) {
      snapshots_[m.step] = *std::move(snapshot);
      while (snapshots_.size() > kKeptSnapshots) snapshots_.erase(snapshots_.begin());
    } else {
      s = snapshot.status();
    }
  }
  if (s.ok()) {
    MaybeMoveOut();
    TakePendingReplicas(/*now=*/false);
  }
  m.done(s);
  if (s.ok()) RedispatchParked();
}

void ParamActor::OnFinalize(FinalizeMsg& m) {
  if (m.step != state_->version() + 1) {
    m.done(absl::FailedPreconditionError(
        absl::StrCat(id_.Name(), ": finalize of step ", m.step, " at version ", state_->version())));
    return;
  }
  buckets_.Clear();  // forwards without a backward (a trainer died) hold nothing useful now
  if (m.step == unreplicable_step_) {
    m.done(PeersChanged(m.step));
    return;
  }
  if (replica_peers_.empty()) {
    m.done(state_->Finalize());
    return;
  }
  // Every micro-batch is committed, so this replica's contributions are complete.
  if (!own_sent_) {
    std::vector<cluster::MicroBatchSpan> micro_batches;
    std::vector<std::vector<float>> grads;
    for (const auto& [first, own] : own_grads_) {
      micro_batches.push_back(own.span);
      grads.push_back(own.grad);
    }
    // What came in as bf16 is exact in bf16 (and the tree's sums are rounded alike): it goes on as bf16.
    const proto::DType dtype =
        !own_grads_.empty() && state_->bf16_step() ? proto::DType::BF16 : proto::DType::F32;
    for (const std::string& peer : replica_peers_) send_to_replica_(peer, m.step, micro_batches, grads, dtype);
    own_sent_ = true;
  }
  if (waiting_finalize_) waiting_finalize_->done(absl::AbortedError(absl::StrCat(
                             id_.Name(), ": finalize of step ", m.step, " asked again")));
  waiting_finalize_ = std::move(m);
  MaybeFinishReplicatedFinalize();
}

}  // namespace sy::expert_host
