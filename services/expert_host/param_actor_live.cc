// A ParamActor's live moves (see param_actor.h, param_actor_messages.h): on the host it
// leaves, the actor hands its state over once it applied the move's last step and then
// refuses later steps with the new placement epoch; on the host it comes to, it waits
// (requests parked, finalize and apply held) until the state is installed, which rolls
// nothing back and touches no other actor.
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "services/expert_host/param_actor.h"

namespace sy::expert_host {

void ParamActor::WaitForLiveInstall(ParamActorMsg& msg) {
  std::visit(
      [&](auto& m) {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, FinalizeMsg> || std::is_same_v<M, ApplyMsg>) {
          waiting_for_install_.push_back(std::move(msg));
        } else if constexpr (std::is_same_v<M, SnapshotMsg> || kIsParamActorRequest<M>) {
          if (parked_.size() >= parking_.max_parked) {
            FailParkable(msg, absl::ResourceExhaustedError(absl::StrCat(
                                  id_.Name(), ": ", parked_.size(), " requests already wait for its live move")));
            return;
          }
          parked_.push_back({std::min(m.deadline, absl::Now() + parking_.max_wait), std::move(msg)});
          ArmExpiryTimer();
        } else {
          SY_LOG(FATAL) << id_.Name() << ": a message that does not wait for a live move";
        }
      },
      msg);
}

void ParamActor::OnLiveInstall(LiveInstallMsg& m) {
  if (!live_version_.has_value() || *live_version_ != m.version) {
    m.done(absl::FailedPreconditionError(absl::StrCat(id_.Name(), ": live state at version ", m.version,
                                                      " was not expected here")));
    return;
  }
  if (absl::Status s = state_->LoadState(m.version, m.bytes); !s.ok()) {
    m.done(s);  // the actor keeps waiting: a good copy may still come, or the coordinator recovers
    return;
  }
  live_version_.reset();
  snapshots_.clear();
  TakePendingReplicas(/*now=*/false);
  Become("serving", [this](ParamActorMsg& msg) { Handle(msg); });
  m.done(absl::OkStatus());
  std::vector<ParamActorMsg> waiting = std::move(waiting_for_install_);
  waiting_for_install_.clear();
  for (ParamActorMsg& w : waiting) Handle(w);
  RedispatchParked();
}

void ParamActor::DropLiveWaiters(const absl::Status& why) {
  live_version_.reset();
  FailParked(why, absl::InfiniteFuture());
  for (ParamActorMsg& w : waiting_for_install_) {
    std::visit(
        [&](auto& m) {
          using M = std::decay_t<decltype(m)>;
          if constexpr (std::is_same_v<M, FinalizeMsg>) {
            m.done(why);
          } else if constexpr (std::is_same_v<M, ApplyMsg>) {
            m.done(why);
          }
        },
        w);
  }
  waiting_for_install_.clear();
}

void ParamActor::OnMoveOut(MoveOutMsg& m) {
  if (state_->version() > m.version) {
    m.done(absl::FailedPreconditionError(absl::StrCat(id_.Name(), ": live move after step ", m.version,
                                                      " but the actor is already at version ", state_->version())));
    return;
  }
  if (move_out_) move_out_->done(absl::AbortedError(absl::StrCat(id_.Name(), ": live move replaced by a newer one")));
  move_out_ = std::move(m);
  MaybeMoveOut();
}

void ParamActor::MaybeMoveOut() {
  if (!move_out_ || state_->version() != move_out_->version) return;
  MoveOutMsg m = std::move(*move_out_);
  move_out_.reset();
  MoveOut(m);
}

void ParamActor::MoveOut(MoveOutMsg& m) {
  absl::StatusOr<std::string> state = state_->SaveState();
  if (!state.ok()) {
    m.done(std::move(state));
    return;
  }
  moved_epoch_ = m.epoch;
  // Requests of later steps that waited here: sent again under the new table (which may
  // send their micro-batches to another replica). A waiting snapshot (a checkpoint at
  // this step) is still served.
  std::deque<Parked> snapshots;
  for (Parked& p : parked_) {
    if (std::holds_alternative<SnapshotMsg>(p.msg)) {
      snapshots.push_back(std::move(p));
    } else {
      FailParkable(p.msg, MovedAway());
    }
  }
  parked_ = std::move(snapshots);
  if (!m.keep) {
    Become("moved", [this](ParamActorMsg& msg) { HandleMovedAway(msg); });
    buckets_.Clear();
  }
  m.done(std::move(state));
}

absl::Status ParamActor::MovedAway() const {
  absl::Status status = absl::AbortedError(absl::StrCat(id_.Name(), " moved after step ", state_->version(),
                                                       " (placement epoch ", moved_epoch_, ")"));
  status.SetPayload(transport::kCurrentEpochPayload, absl::Cord(absl::StrCat(moved_epoch_)));
  return status;
}

void ParamActor::HandleMovedAway(ParamActorMsg& msg) {
  std::visit(
      [&](auto& m) {
        using M = std::decay_t<decltype(m)>;
        if constexpr (kIsParamActorRequest<M>) {
          Refuse(m.responder, MovedAway());
        } else if constexpr (std::is_same_v<M, FinalizeMsg>) {
          m.done(MovedAway());
        } else if constexpr (std::is_same_v<M, ApplyMsg>) {
          if (m.step <= state_->version()) {
            m.done(absl::OkStatus());  // a repeated apply of a step it took part in
          } else {
            m.done(MovedAway());
          }
        } else if constexpr (std::is_same_v<M, SnapshotMsg>) {
          OnSnapshot(m);
        } else if constexpr (std::is_same_v<M, StatusMsg>) {
          OnStatus(m);
        } else if constexpr (std::is_same_v<M, RestoreMsg>) {
          OnRestore(m);  // a recovery placed it here again
        } else if constexpr (std::is_same_v<M, ReplicasMsg>) {
          SetReplicas(m);
        } else if constexpr (std::is_same_v<M, MoveOutMsg> || std::is_same_v<M, LiveInstallMsg>) {
          m.done(MovedAway());
        } else if constexpr (std::is_same_v<M, RemovedMsg> || std::is_same_v<M, ExpectLiveMsg> ||
                             std::is_same_v<M, DropStepMsg>) {
          // Nothing held: it serves no step here any more.
        } else {
          static_assert(sizeof(M) == 0, "ParamActor: a message the moved behavior does not handle");
        }
      },
      msg);
}

}  // namespace sy::expert_host
