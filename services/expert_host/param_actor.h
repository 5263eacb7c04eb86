// One expert, or one dense parameter shard, of an expert host as an actor: its
// ParamState (weights, Adam moments, version, the open step's gradient
// contributions) and, for experts, the expert unit with the activations forward
// kept for backward, keyed by micro-batch (expert_buckets.h). Messages
// (param_actor_messages.h) are handled one at a time on the actor's strand;
// requests that checked out at the door (HostService) arrive here with their
// transport Responder. A request for a version the actor has not reached
// waits (parked) until an Apply moves the version there, or until its deadline
// (then DeadlineExceeded), at most ParkingLimits::max_wait; once max_parked
// requests wait, another is refused (ResourceExhausted, sy_refused_total{reason=
// "parked_per_actor"}) and changes nothing. A request for an older version is refused
// (FailedPrecondition: stale step) and changes nothing. An actor placed on the
// host at runtime starts "restoring": its weights are not valid until a
// checkpoint restore lands, and until then every request is refused with
// Unavailable and changes nothing. A restore to version S (any state) rolls the
// actor back: the open step's contributions and saved activations are dropped
// and parked requests are answered Aborted ("rolled back to step S").
// Replicas (ReplicasMsg names the other hosts holding the actor): each replica
// serves only some micro-batches (the trainers split them), keeps a copy of its own
// per-micro-batch gradient contributions, and at Finalize sends them to every peer;
// the step closes once every peer's contributions are in the tree too. The tree is
// fixed (gpu/model/grad_tree.h), so every replica sums the same M contributions in
// the same order: the copies stay bit-identical, and equal to an unreplicated actor.
// Thread-safe as every Actor: Tell from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/actor/actor.h"
#include "common/transport/rpc.h"
#include "gpu/model/config.h"
#include "proto/expert.capnp.h"
#include "services/expert_host/emulated_device.h"
#include "services/expert_host/expert_buckets.h"
#include "services/expert_host/host_limits.h"
#include "services/expert_host/param_actor_messages.h"
#include "services/expert_host/param_state.h"

namespace sy::expert_host {

// What the actor is: an expert or a dense shard. An expert knows both its model layer
// (its requests, dropout keys and parameter names use it) and its Switch-layer index
// (its name in the control plane: status replies, cluster::ActorKey).
struct ActorIdentity {
  bool is_expert = false;
  int layer = 0;         // model layer
  int switch_layer = 0;  // Switch-layer index of `layer`
  int expert = 0;
  int shard = 0;
  std::string Name() const;
};

class ParamActor : public actor::Actor<ParamActorMsg> {
 public:
  // d_model/d_ff/dropout for experts (config), state holds the parameters.
  // With checkpoint_every = N > 0 the actor keeps its state at the last
  // kKeptSnapshots multiples of N, so a checkpoint asked for late still finds it.
  // With awaiting_restore the actor refuses everything but status until a restore.
  // With a `device` (emulation, must outlive the actor) bucket replies wait for it.
  ParamActor(actor::Executor& executor, ActorIdentity id, const gpu::ModelConfig& config,
             std::unique_ptr<ParamState> state, metrics::Registry* registry, uint64_t checkpoint_every = 0,
             bool awaiting_restore = false, ParkingLimits parking = {}, EmulatedDevice* device = nullptr);
  static constexpr size_t kKeptSnapshots = 4;
  const ActorIdentity& identity() const { return id_; }
  // The gradient-norm segments the actor owns (fixed at construction).
  const std::vector<StateSegment>& segments() const { return segments_; }

 private:
  void Handle(ParamActorMsg& msg);
  // The "restoring" behavior: status and restore are served, everything else is Unavailable.
  void HandleAwaitingRestore(ParamActorMsg& msg);
  void OnRestore(RestoreMsg& m);
  void DropOpenStep();
  void OnStatus(StatusMsg& m);
  // True when the message must wait for a newer version (then it is parked).
  bool ParkIfAhead(uint64_t wanted_version, ParamActorMsg& msg, absl::Time deadline);
  absl::Status Stale(uint64_t wanted_version, const char* what) const;
  void OnForward(ForwardMsg& m);
  void OnBackward(BackwardMsg& m);
  // The reply's bucket id: this expert's model layer and index, `step` and `micro_batch`.
  void SetBucket(proto::expert::BucketId::Builder bucket, uint64_t step, uint32_t micro_batch) const;
  void OnPush(PushMsg& m);
  void OnPull(PullMsg& m);
  void OnApply(ApplyMsg& m);
  void OnSnapshot(SnapshotMsg& m);
  void SetReplicas(ReplicasMsg& m);
  // The peers a live move set for after its boundary, once the actor is there (or `now`:
  // a restore put the move's table in force at once).
  void TakePendingReplicas(bool now);
  // ---- live moves (param_actor_live.cc)
  // A restoring actor expecting a live move keeps `msg` (a request, finalize, apply or
  // snapshot) until the state is installed.
  void WaitForLiveInstall(ParamActorMsg& msg);
  // Installs the moved state without rolling anything back, then serves what waited.
  void OnLiveInstall(LiveInstallMsg& m);
  // The actor was removed while waiting: what waited fails with `why`.
  void DropLiveWaiters(const absl::Status& why);
  void OnMoveOut(MoveOutMsg& m);
  // After an apply: the pending move out happens when the actor reached its version.
  void MaybeMoveOut();
  // Hands the state over; unless kept, the actor becomes "moved".
  void MoveOut(MoveOutMsg& m);
  // The "moved" behavior: every request is refused with the new epoch (no rollback follows).
  void HandleMovedAway(ParamActorMsg& msg);
  absl::Status MovedAway() const;
  void OnFinalize(FinalizeMsg& m);
  void OnPeerGradients(PeerGradientsMsg& m);
  // A replica's own contribution of micro-batch m, kept for its peers.
  void KeepOwn(uint32_t m, const float* device_grad);
  // Answers the waiting finalize once every peer's contributions are in.
  void MaybeFinishReplicatedFinalize();
  // Drops the open step's replica exchange; a waiting finalize gets `why`.
  void ResetReplicaStep(const absl::Status& why);
  // Aborted: the replica hosts changed during `step` (see unreplicable_step_).
  absl::Status PeersChanged(uint64_t step) const;
  // Fails parked requests whose deadline passed (checked every 250 ms while any wait).
  void OnExpire();
  // Fails with `status` every parked request whose deadline is not after `now`.
  void FailParked(const absl::Status& status, absl::Time now);
  // Answers a parkable message (a request, a snapshot) with `status`.
  void FailParkable(ParamActorMsg& msg, const absl::Status& status);
  void ArmExpiryTimer();
  void RedispatchParked();
  // Error reply, counted in sy_host_errors_total.
  void Refuse(transport::Responder& responder, const absl::Status& status);

  ActorIdentity id_;
  gpu::ModelConfig config_;
  std::unique_ptr<ParamState> state_;
  const std::vector<StateSegment> segments_;
  ExpertBuckets buckets_;  // experts: the training forwards of the open step, by micro-batch
  EmulatedDevice* device_;  // null: no emulation, replies leave at once
  struct Parked {
    absl::Time deadline;
    ParamActorMsg msg;
  };
  std::deque<Parked> parked_;
  const ParkingLimits parking_;
  uint64_t checkpoint_every_ = 0;
  std::map<uint64_t, std::string> snapshots_;  // version (a multiple of checkpoint_every_) -> SaveState bytes
  // The version of the last restore while no step was applied since: a backward whose
  // forward is missing then lost it to the rollback (Aborted, not FailedPrecondition).
  std::optional<uint64_t> restored_to_;
  bool expiry_timer_ = false;
  metrics::Registry* registry_;
  // Replication (empty peers: none). The open step's exchange: own contributions by
  // first micro-batch, whether they went out, the peers whose contributions are in, and a
  // finalize waiting for them.
  std::vector<std::string> replica_peers_;
  ReplicaSender send_to_replica_;
  struct OwnContribution {
    cluster::MicroBatchSpan span;
    std::vector<float> grad;
  };
  std::map<uint32_t, OwnContribution> own_grads_;  // by first micro-batch
  bool own_sent_ = false;
  std::set<std::string> peers_in_;
  std::optional<FinalizeMsg> waiting_finalize_;
  std::optional<ReplicasMsg> pending_replicas_;  // peers from a live move's boundary on
  // A step open when the peers changed at once (0: none): it cannot close consistently,
  // and neither finalizes nor takes peers' contributions until a restore, drop or apply.
  uint64_t unreplicable_step_ = 0;
  // Live moves: the version a live move brings here (set while restoring), what waits
  // for it besides parked requests (finalize, apply, snapshot), and a move out waiting
  // for its step; moved_epoch_ is the placement epoch that took the actor away.
  std::optional<uint64_t> live_version_;
  std::vector<ParamActorMsg> waiting_for_install_;
  std::optional<MoveOutMsg> move_out_;
  uint64_t moved_epoch_ = 0;
};

}  // namespace sy::expert_host
