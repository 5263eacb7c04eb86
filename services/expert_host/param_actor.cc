// An expert or dense-shard actor (see param_actor.h).
#include "services/expert_host/param_actor.h"

#include <chrono>
#include <type_traits>

#include <capnp/message.h>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/transport/envelope_codec.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/step_wire.h"
#include "services/cluster/wire_tensor.h"
#include "services/expert_host/host_metrics.h"

namespace sy::expert_host {
namespace {

uint64_t Uint(int64_t x) { return static_cast<uint64_t>(x); }

}  // namespace

std::string ActorIdentity::Name() const {
  return is_expert ? absl::StrCat("expert(layer ", layer, ", expert ", expert, ")") : absl::StrCat("shard ", shard);
}

ParamActor::ParamActor(actor::Executor& executor, ActorIdentity id, const gpu::ModelConfig& config,
                       std::unique_ptr<ParamState> state, metrics::Registry* registry, uint64_t checkpoint_every,
                       bool awaiting_restore)
    : Actor(executor,
            id.is_expert ? absl::StrCat("expert-", id.layer, "-", id.expert) : absl::StrCat("shard-", id.shard),
            registry),
      id_(id),
      config_(config),
      state_(std::move(state)),
      segments_(state_->segments()),
      checkpoint_every_(checkpoint_every),
      registry_(registry) {
  if (awaiting_restore) {
    Become("restoring", [this](ParamActorMsg& msg) { HandleAwaitingRestore(msg); });
  } else {
    Become("serving", [this](ParamActorMsg& msg) { Handle(msg); });
  }
}

void ParamActor::HandleAwaitingRestore(ParamActorMsg& msg) {
  if (auto* m = std::get_if<RestoreMsg>(&msg)) {
    OnRestore(*m);
    return;
  }
  if (auto* m = std::get_if<StatusMsg>(&msg)) {
    OnStatus(*m);
    return;
  }
  const absl::Status restoring = absl::UnavailableError(
      absl::StrCat(id_.Name(), " is being restored (placed on this host at runtime; its state is not loaded yet)"));
  std::visit(
      [&](auto& m) {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, ForwardMsg> || std::is_same_v<M, BackwardMsg> ||
                      std::is_same_v<M, PushMsg> || std::is_same_v<M, PullMsg> ||
                      std::is_same_v<M, PeerGradientsMsg>) {
          Refuse(m.responder, restoring);
        } else if constexpr (std::is_same_v<M, FinalizeMsg> || std::is_same_v<M, ApplyMsg> ||
                             std::is_same_v<M, SnapshotMsg>) {
          m.done(restoring);
        } else if constexpr (std::is_same_v<M, ReplicasMsg>) {
          replica_peers_ = std::move(m.peers);
          send_to_replica_ = std::move(m.send);
        }
      },
      msg);
}

void ParamActor::OnRestore(RestoreMsg& m) {
  absl::Status s = state_->LoadState(m.version, m.bytes);
  if (s.ok()) {
    snapshots_.erase(snapshots_.upper_bound(m.version), snapshots_.end());
    // The abandoned timeline's requests: the trainers roll back and send them again.
    saved_.clear();
    const absl::Status rolled_back = absl::AbortedError(absl::StrCat(
        id_.Name(), ": rolled back to step ", m.version, " (checkpoint restore); replay from step ", m.version + 1));
    ResetReplicaStep(rolled_back);
    FailParked(rolled_back, absl::InfiniteFuture());
    restored_to_ = m.version;
    Become("serving", [this](ParamActorMsg& msg) { Handle(msg); });
  }
  m.done(s);
}

void ParamActor::OnStatus(StatusMsg& m) {
  absl::StatusOr<uint64_t> checksum = state_->Checksum();
  if (!checksum.ok()) {
    m.done(checksum.status());
    return;
  }
  m.done(ActorStatusValue{id_.is_expert, id_.layer, id_.expert, id_.shard, state_->version(), *checksum,
                          state_->contributions()});
}

void ParamActor::Handle(ParamActorMsg& msg) {
  if (auto* m = std::get_if<ForwardMsg>(&msg)) {
    if (!ParkIfAhead(m->version, msg, m->deadline)) OnForward(*m);
  } else if (auto* m = std::get_if<BackwardMsg>(&msg)) {
    if (!ParkIfAhead(m->version, msg, m->deadline)) OnBackward(*m);
  } else if (auto* m = std::get_if<PushMsg>(&msg)) {
    if (!ParkIfAhead(m->step - 1, msg, m->deadline)) OnPush(*m);
  } else if (auto* m = std::get_if<PullMsg>(&msg)) {
    if (!ParkIfAhead(m->version, msg, m->deadline)) OnPull(*m);
  } else if (auto* m = std::get_if<FinalizeMsg>(&msg)) {
    OnFinalize(*m);
  } else if (auto* m = std::get_if<PeerGradientsMsg>(&msg)) {
    if (!ParkIfAhead(m->step - 1, msg, m->deadline)) OnPeerGradients(*m);
  } else if (auto* m = std::get_if<ReplicasMsg>(&msg)) {
    replica_peers_ = std::move(m->peers);
    send_to_replica_ = std::move(m->send);
  } else if (auto* m = std::get_if<ApplyMsg>(&msg)) {
    OnApply(*m);
  } else if (auto* m = std::get_if<SnapshotMsg>(&msg)) {
    if (ParkIfAhead(m->version, msg, m->deadline)) return;
    if (m->version == state_->version()) {
      m->done(state_->SaveState());
      return;
    }
    auto kept = snapshots_.find(m->version);
    if (kept == snapshots_.end()) {
      m->done(Stale(m->version, "snapshot"));
      return;
    }
    m->done(kept->second);
  } else if (auto* m = std::get_if<RestoreMsg>(&msg)) {
    OnRestore(*m);
  } else if (auto* m = std::get_if<StatusMsg>(&msg)) {
    OnStatus(*m);
  } else if (auto* m = std::get_if<RemovedMsg>(&msg)) {
    saved_.clear();
    ResetReplicaStep(absl::NotFoundError(m->why));
    FailParked(absl::NotFoundError(m->why), absl::InfiniteFuture());
  }
}

bool ParamActor::ParkIfAhead(uint64_t wanted_version, ParamActorMsg& msg, absl::Time deadline) {
  if (wanted_version <= state_->version()) return false;
  parked_.push_back({deadline, std::move(msg)});
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
    std::visit(
        [&](auto& m) {
          if constexpr (std::is_same_v<std::decay_t<decltype(m)>, ForwardMsg> ||
                        std::is_same_v<std::decay_t<decltype(m)>, BackwardMsg> ||
                        std::is_same_v<std::decay_t<decltype(m)>, PushMsg> ||
                        std::is_same_v<std::decay_t<decltype(m)>, PullMsg> ||
                        std::is_same_v<std::decay_t<decltype(m)>, PeerGradientsMsg>) {
            Refuse(m.responder, expired);
          } else if constexpr (std::is_same_v<std::decay_t<decltype(m)>, SnapshotMsg>) {
            m.done(expired);
          }
        },
        p.msg);
  }
  parked_ = std::move(keep);
}

void ParamActor::RedispatchParked() {
  std::deque<Parked> parked = std::move(parked_);
  parked_.clear();
  for (Parked& p : parked) Handle(p.msg);
}

void ParamActor::Refuse(transport::Responder& responder, const absl::Status& status) {
  FailAndCount(registry_, responder, status);
}

gpu::ExpertWeights ParamActor::Weights() const {
  const int64_t C = config_.d_model, F = config_.d_ff;
  const float* p = state_->params();
  return gpu::ExpertWeights{p, p + C * F, p + C * F + F, p + C * F + F + F * C};
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
  if (m.training && (state_->finalized() || saved_.count(m.micro_batch) != 0)) {
    Refuse(m.responder, absl::FailedPreconditionError(absl::StrCat(
        id_.Name(), ": forward of step ", m.step, " micro-batch ", m.micro_batch,
        state_->finalized() ? ": the step is closed" : ": this micro-batch already ran forward")));
    return;
  }
  gpu::Backend* backend = state_->backend();
  const int C = config_.d_model, F = config_.d_ff, n = m.rows;
  Saved saved;
  saved.rows = n;
  saved.dropout = gpu::ExpertDropout{m.training ? config_.expert_dropout : 0.0f, m.seed, static_cast<int64_t>(m.step),
                                     m.micro_batch, id_.layer, id_.expert};
  absl::Status status;
  absl::StatusOr<DeviceArray> in = DeviceArray::Create(backend, int64_t{n} * C);
  absl::StatusOr<DeviceArray> pre = DeviceArray::Create(backend, int64_t{n} * F);
  absl::StatusOr<DeviceArray> act = DeviceArray::Create(backend, int64_t{n} * F);
  absl::StatusOr<DeviceArray> out = DeviceArray::Create(backend, int64_t{n} * C);
  for (const auto* s : {&in, &pre, &act, &out}) status.Update(s->status());
  if (!status.ok()) {
    Refuse(m.responder, status);
    return;
  }
  status.Update(backend->CopyHostToDevice(in->data(), m.in.data(), m.in.size() * sizeof(float)));
  gpu::ExpertForward(backend, out->data(), {pre->data(), act->data()}, in->data(), n, C, F, Weights(), saved.dropout);
  std::vector<float> host_out(static_cast<size_t>(n) * C);
  status.Update(backend->CopyDeviceToHost(host_out.data(), out->data(), host_out.size() * sizeof(float)));
  if (!status.ok()) {
    Refuse(m.responder, status);
    return;
  }
  if (m.training) {
    saved.in = *std::move(in);
    saved.pre = *std::move(pre);
    saved.act = *std::move(act);
    saved_[m.micro_batch] = std::move(saved);
  }
  capnp::MallocMessageBuilder header;
  auto env = cluster::InitEnvelope(header, proto::MessageKind::EXPERT_FORWARD);
  auto body = env.initBody().initAs<proto::expert::ExpertForwardReply>();
  auto bucket = body.initBucket();
  bucket.setStep(m.step);
  bucket.setMicroBatch(m.micro_batch);
  bucket.setLayer(static_cast<uint32_t>(id_.layer));
  bucket.setExpert(static_cast<uint32_t>(id_.expert));
  body.setTokenCount(static_cast<uint32_t>(n));
  body.setVersion(state_->version());
  transport::SetTensor(env.initTensors(1)[0], "outputs", proto::TensorRole::OUTPUTS, m.dtype, {Uint(n), Uint(C)});
  m.responder.Reply(header, {cluster::EncodeFloats(host_out.data(), int64_t{n} * C, m.dtype)});
}

void ParamActor::OnBackward(BackwardMsg& m) {
  if (m.version < state_->version()) {
    Refuse(m.responder, Stale(m.version, "backward"));
    return;
  }
  auto it = saved_.find(m.micro_batch);
  if (it == saved_.end() && restored_to_ == state_->version()) {
    Refuse(m.responder, absl::AbortedError(absl::StrCat(id_.Name(), ": backward of step ", m.step, " micro-batch ",
                                                        m.micro_batch, ": rolled back to step ", state_->version(),
                                                        " (checkpoint restore) since its forward; replay")));
    return;
  }
  if (it == saved_.end()) {
    Refuse(m.responder, absl::FailedPreconditionError(absl::StrCat(
        id_.Name(), ": backward of step ", m.step, " micro-batch ", m.micro_batch, " without its forward")));
    return;
  }
  Saved& saved = it->second;
  if (saved.rows != m.rows) {
    Refuse(m.responder, absl::InvalidArgumentError(absl::StrCat(id_.Name(), ": backward has ", m.rows,
                                                             " rows, its forward had ", saved.rows)));
    return;
  }
  gpu::Backend* backend = state_->backend();
  const int C = config_.d_model, F = config_.d_ff, n = m.rows;
  absl::Status status;
  absl::StatusOr<DeviceArray> dout = DeviceArray::Create(backend, int64_t{n} * C);
  absl::StatusOr<DeviceArray> din = DeviceArray::Create(backend, int64_t{n} * C);
  absl::StatusOr<DeviceArray> scratch = DeviceArray::Create(backend, int64_t{n} * F);
  absl::StatusOr<DeviceArray> grad = DeviceArray::Create(backend, state_->size());
  for (const auto* s : {&dout, &din, &scratch, &grad}) status.Update(s->status());
  if (!status.ok()) {
    Refuse(m.responder, status);
    return;
  }
  status.Update(backend->CopyHostToDevice(dout->data(), m.dout.data(), m.dout.size() * sizeof(float)));
  status.Update(backend->Zero(grad->data(), state_->size() * sizeof(float)));
  float* g = grad->data();
  const int64_t CF = int64_t{C} * F;
  const gpu::ExpertGrads grads{g, g + CF, g + CF + F, g + CF + F + CF};
  gpu::ExpertBackward(backend, din->data(), grads, scratch->data(), dout->data(), saved.in.data(),
                      {saved.pre.data(), saved.act.data()}, n, C, F, Weights(), saved.dropout);
  status.Update(state_->AddContribution(static_cast<int>(m.micro_batch), g));
  if (status.ok()) KeepOwn(m.micro_batch, g);
  std::vector<float> host_din(static_cast<size_t>(n) * C);
  status.Update(backend->CopyDeviceToHost(host_din.data(), din->data(), host_din.size() * sizeof(float)));
  if (!status.ok()) {
    Refuse(m.responder, status);
    return;
  }
  saved_.erase(it);
  capnp::MallocMessageBuilder header;
  auto env = cluster::InitEnvelope(header, proto::MessageKind::EXPERT_BACKWARD);
  auto body = env.initBody().initAs<proto::expert::ExpertBackwardReply>();
  auto bucket = body.initBucket();
  bucket.setStep(m.step);
  bucket.setMicroBatch(m.micro_batch);
  bucket.setLayer(static_cast<uint32_t>(id_.layer));
  bucket.setExpert(static_cast<uint32_t>(id_.expert));
  body.setTokenCount(static_cast<uint32_t>(n));
  transport::SetTensor(env.initTensors(1)[0], "inputGrad", proto::TensorRole::INPUT_GRAD, m.dtype, {Uint(n), Uint(C)});
  m.responder.Reply(header, {cluster::EncodeFloats(host_din.data(), int64_t{n} * C, m.dtype)});
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
  if (status.ok()) status = state_->AddContribution(static_cast<int>(m.micro_batch), grad->data());
  if (!status.ok()) {
    Refuse(m.responder, status);
    return;
  }
  if (!replica_peers_.empty()) own_grads_[m.micro_batch] = std::move(m.grad);
  capnp::MallocMessageBuilder header;
  auto env = cluster::InitEnvelope(header, proto::MessageKind::PARAM_PUSH);
  auto body = env.initBody().initAs<proto::parameter::PushReply>();
  body.setShard(static_cast<uint32_t>(id_.shard));
  body.setStep(m.step);
  body.setApplied(false);
  m.responder.Reply(header);
}

void ParamActor::OnPull(PullMsg& m) {
  std::vector<float> values;
  if (absl::Status s = state_->CopyParamsToHost(&values); !s.ok()) {
    Refuse(m.responder, s);
    return;
  }
  capnp::MallocMessageBuilder header;
  auto env = cluster::InitEnvelope(header, proto::MessageKind::PARAM_PULL);
  auto body = env.initBody().initAs<proto::parameter::PullReply>();
  body.setShard(static_cast<uint32_t>(id_.shard));
  body.setVersion(state_->version());
  body.setElementCount(values.size());
  transport::SetTensor(env.initTensors(1)[0], "parameters", proto::TensorRole::PARAMETERS, proto::DType::F32,
                       {values.size()});
  m.responder.Reply(header, {cluster::EncodeFloats(values.data(), static_cast<int64_t>(values.size()),
                                                   proto::DType::F32)});
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
  m.done(s);
  if (s.ok()) RedispatchParked();
}

void ParamActor::OnFinalize(FinalizeMsg& m) {
  if (m.step != state_->version() + 1) {
    m.done(absl::FailedPreconditionError(
        absl::StrCat(id_.Name(), ": finalize of step ", m.step, " at version ", state_->version())));
    return;
  }
  saved_.clear();  // forwards without a backward (a trainer died) hold nothing useful now
  if (replica_peers_.empty()) {
    m.done(state_->Finalize());
    return;
  }
  // Every micro-batch is committed, so this replica's contributions are complete.
  if (!own_sent_) {
    std::vector<uint32_t> micro_batches;
    std::vector<std::vector<float>> grads;
    for (const auto& [mb, grad] : own_grads_) {
      micro_batches.push_back(mb);
      grads.push_back(grad);
    }
    for (const std::string& peer : replica_peers_) send_to_replica_(peer, m.step, micro_batches, grads);
    own_sent_ = true;
  }
  if (waiting_finalize_) waiting_finalize_->done(absl::AbortedError(absl::StrCat(
                             id_.Name(), ": finalize of step ", m.step, " asked again")));
  waiting_finalize_ = std::move(m);
  MaybeFinishReplicatedFinalize();
}

void ParamActor::OnPeerGradients(PeerGradientsMsg& m) {
  if (m.step != state_->version() + 1) {
    Refuse(m.responder, Stale(m.step - 1, "replica gradients"));
    return;
  }
  if (std::find(replica_peers_.begin(), replica_peers_.end(), m.sender) == replica_peers_.end()) {
    Refuse(m.responder, absl::InvalidArgumentError(absl::StrCat(m.sender, " holds no replica of ", id_.Name(),
                                                                " that this host knows of")));
    return;
  }
  if (peers_in_.count(m.sender) != 0) {
    Refuse(m.responder, absl::AlreadyExistsError(absl::StrCat(id_.Name(), ": ", m.sender,
                                                              " already sent its contributions of step ", m.step)));
    return;
  }
  // Checked whole before any is added: a refused message changes nothing.
  for (uint32_t mb : m.micro_batches) {
    if (state_->has_contribution(static_cast<int>(mb))) {
      Refuse(m.responder, absl::AlreadyExistsError(absl::StrCat(id_.Name(), ": micro-batch ", mb, " of step ",
                                                                m.step, " already has a contribution here")));
      return;
    }
  }
  absl::StatusOr<DeviceArray> device = DeviceArray::Create(state_->backend(), state_->size());
  absl::Status status = device.status();
  for (size_t i = 0; status.ok() && i < m.micro_batches.size(); ++i) {
    status = state_->backend()->CopyHostToDevice(device->data(), m.grads[i].data(), m.grads[i].size() * sizeof(float));
    if (status.ok()) status = state_->AddContribution(static_cast<int>(m.micro_batches[i]), device->data());
  }
  if (!status.ok()) {
    Refuse(m.responder, status);
    return;
  }
  peers_in_.insert(m.sender);
  capnp::MallocMessageBuilder header;
  auto env = cluster::InitEnvelope(header, proto::MessageKind::REPLICA_GRADIENTS);
  env.initBody().initAs<proto::expert::ReplicaGradientsReply>().setStep(m.step);
  m.responder.Reply(header);
  MaybeFinishReplicatedFinalize();
}

void ParamActor::KeepOwn(uint32_t m, const float* device_grad) {
  if (replica_peers_.empty()) return;
  std::vector<float>& kept = own_grads_[m];
  kept.resize(static_cast<size_t>(state_->size()));
  if (absl::Status s = state_->backend()->CopyDeviceToHost(kept.data(), device_grad, kept.size() * sizeof(float));
      !s.ok()) {
    SY_LOG(ERROR) << id_.Name() << ": cannot keep micro-batch " << m << " for the replicas: " << s;
  }
}

void ParamActor::MaybeFinishReplicatedFinalize() {
  if (!waiting_finalize_) return;
  for (const std::string& peer : replica_peers_) {
    if (peers_in_.count(peer) == 0) return;
  }
  FinalizeMsg m = std::move(*waiting_finalize_);
  waiting_finalize_.reset();
  m.done(state_->Finalize());
}

void ParamActor::ResetReplicaStep(const absl::Status& why) {
  own_grads_.clear();
  own_sent_ = false;
  peers_in_.clear();
  if (waiting_finalize_) {
    FinalizeMsg m = std::move(*waiting_finalize_);
    waiting_finalize_.reset();
    m.done(why.ok() ? absl::AbortedError(absl::StrCat(id_.Name(), ": the step was closed meanwhile")) : why);
  }
}

}  // namespace sy::expert_host
