// A ParamActor's replication (see param_actor.h): the replica peers, the own
// contributions kept for them, and the peers' contributions added
// to the step's tree before a replicated finalize closes it.
#include <algorithm>

#include <capnp/message.h>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "services/expert_host/param_actor.h"

namespace sy::expert_host {

void ParamActor::SetReplicas(ReplicasMsg& m) {
  if (m.after_version > state_->version()) {  // a live move's new peers: from its boundary on
    pending_replicas_ = std::move(m);
    return;
  }
  pending_replicas_.reset();
  // New peers at once while a step is open: what this replica took in before was not
  // kept for them (or was split for other peers), so the step cannot close the same on
  // every replica. Such a table comes with a restore or a failover that replays the
  // step; closing it anyway handed a peer restored meanwhile a partial sum as the
  // replay's contributions.
  const bool open = state_->contributions() > 0 || own_sent_ || waiting_finalize_.has_value();
  if (open && m.peers != replica_peers_) {
    const uint64_t step = state_->version() + 1;
    ResetReplicaStep(PeersChanged(step));
    unreplicable_step_ = step;
  }
  replica_peers_ = std::move(m.peers);
  send_to_replica_ = std::move(m.send);
}

absl::Status ParamActor::PeersChanged(uint64_t step) const {
  return absl::AbortedError(absl::StrCat(id_.Name(), ": its replica hosts changed during step ", step,
                                         ", which is replayed"));
}

void ParamActor::TakePendingReplicas(bool now) {
  if (!pending_replicas_ || (!now && pending_replicas_->after_version > state_->version())) return;
  ReplicasMsg m = std::move(*pending_replicas_);
  pending_replicas_.reset();
  m.after_version = 0;
  SetReplicas(m);
}

void ParamActor::OnPeerGradients(PeerGradientsMsg& m) {
  if (m.step != state_->version() + 1) {
    Refuse(m.responder, Stale(m.step - 1, "replica gradients"));
    return;
  }
  if (m.step == unreplicable_step_) {
    Refuse(m.responder, PeersChanged(m.step));
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
  if (m.bf16 && id_.is_expert) {  // only dense shards travel in bf16 (--dense_wire_dtype)
    Refuse(m.responder, absl::InvalidArgumentError(absl::StrCat(
                            id_.Name(), ": an expert's replica gradients travel in f32, not bf16 (from ", m.sender, ")")));
    return;
  }
  // Checked whole before any is added: a refused message changes nothing.
  if (absl::Status s = m.grads.empty() ? absl::OkStatus() : state_->CheckWire(m.bf16); !s.ok()) {
    Refuse(m.responder, s);
    return;
  }
  for (const cluster::MicroBatchSpan& span : m.micro_batches) {
    for (uint32_t mb = span.first; mb < span.end; ++mb) {
      if (state_->has_contribution(static_cast<int>(mb))) {
        Refuse(m.responder, absl::AlreadyExistsError(absl::StrCat(id_.Name(), ": micro-batch ", mb, " of step ",
                                                                  m.step, " already has a contribution here")));
        return;
      }
    }
  }
  absl::StatusOr<DeviceArray> device = DeviceArray::Create(state_->backend(), state_->size());
  absl::Status status = device.status();
  for (size_t i = 0; status.ok() && i < m.micro_batches.size(); ++i) {
    status = state_->backend()->CopyHostToDevice(device->data(), m.grads[i].data(), m.grads[i].size() * sizeof(float));
    const cluster::MicroBatchSpan& span = m.micro_batches[i];
    if (status.ok()) {
      status = state_->AddContribution(static_cast<int>(span.first), static_cast<int>(span.end), device->data(),
                                       m.bf16);
    }
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
  OwnContribution& own = own_grads_[m];
  own.span = {m, m + 1};
  std::vector<float>& kept = own.grad;
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
  unreplicable_step_ = 0;
  if (waiting_finalize_) {
    FinalizeMsg m = std::move(*waiting_finalize_);
    waiting_finalize_.reset();
    m.done(why.ok() ? absl::AbortedError(absl::StrCat(id_.Name(), ": the step was closed meanwhile")) : why);
  }
}

}  // namespace sy::expert_host
