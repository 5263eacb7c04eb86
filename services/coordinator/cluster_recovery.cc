// The ClusterActor's recovery and restores: a failed host's actors are re-placed and
// every actor is restored from the latest usable checkpoint (a failed trainer's
// survivors replay from it too); an admin restore does the same with the asked-for
// checkpoint. The trainers roll back once the hosts hold the restored state
// (see cluster_actor.h).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "services/coordinator/admin_replies.h"
#include "services/coordinator/cluster_actor.h"

namespace sy::coordinator {

void ClusterActor::OnHostFailed(const std::string& host, const std::string& why) {
  hosts_waiting_to_join_.erase(host);
  // A host streaming or receiving a live move: the moved state may be lost with it.
  const bool moving = live_moves_ && std::any_of(table_.live_moves().begin(), table_.live_moves().end(),
                                                 [&](const cluster::LiveMove& m) {
                                                   return m.move.from == host || m.move.to == host;
                                                 });
  const std::vector<cluster::Move> moves = table_.RemoveHost(host);
  CloseDeadHostConnection(host);
  SY_LOG(WARNING) << "host " << host << " failed (" << why << "): " << moves.size() << " actors re-placed"
                  << (moving ? ", during a live move" : "");
  if (moves.empty() && !moving) return;  // it served nothing
  if (failure_detected_unix_ms_ == 0) failure_detected_unix_ms_ = NowUnixMs();
  ++recoveries_;
  if (metrics_.recoveries != nullptr) metrics_.recoveries->Increment();
  if (CanFailOver(moves, moving)) return FailOver(absl::StrCat("host ", host, " failed"));
  PlacementChanged();
  Recover(absl::StrCat("host ", host, " failed"));
}

void ClusterActor::OnTrainerFailed(const std::string& trainer) {
  const size_t left = membership_.AliveCount(NodeRole::kTrainer);
  SY_LOG(WARNING) << "trainer " << trainer << " missed heartbeats: failed (" << left << " trainers left)";
  if (!table_.initialized() || left == 0) return;  // nothing was running, or nobody is left to replay
  if (failure_detected_unix_ms_ == 0) failure_detected_unix_ms_ = NowUnixMs();
  // Its micro-batches of the open step are lost: the survivors replay from the
  // latest checkpoint and split the micro-batches among themselves.
  ++recoveries_;
  if (metrics_.recoveries != nullptr) metrics_.recoveries->Increment();
  Recover(absl::StrCat("trainer ", trainer, " failed"));
}

void ClusterActor::AbandonCheckpoint(const std::string& why) {
  if (abandon_reason_.empty()) abandon_reason_ = why;  // told at the end of this turn
}

void ClusterActor::Recover(const std::string& why) {
  failover_.reset();  // a failover under way is given up: the restore decides
  unfinished_live_moves_.clear();  // every actor is restored where the new table puts it
  AbandonCheckpoint(absl::StrCat("recovery: ", why));
  live_moves_.reset();  // a restore puts every actor where the table says: nothing moves live any more
  recovering_ = true;
  phase_ = "recovering";
  SY_LOG(WARNING) << "recovery: " << why;
  Restore(checkpoints_->Ask<CheckpointInfo>(QueryLatestUsable{}, absl::ToChronoNanoseconds(options_.call_timeout)),
          [this](const absl::Status& unusable) {
            phase_ = absl::StrCat("degraded: cannot recover (", unusable.message(), ")");
            SY_LOG(ERROR) << "recovery impossible: " << unusable;
            StopTrainers(absl::StrCat("recovery impossible: ", unusable.message(),
                                      absl::IsNotFound(unusable)
                                          ? " (a committed checkpoint makes a failure recoverable: "
                                            "--checkpoint_every, or `syctl checkpoint now`)"
                                          : ""));
          });
}

void ClusterActor::Restore(actor::AskFuture<CheckpointInfo> query,
                           std::function<void(const absl::Status&)> unusable) {
  HoldTrainersUntilRollback();
  Await<CheckpointInfo>(std::move(query), [this, unusable](absl::StatusOr<CheckpointInfo> info) {
    if (!info.ok()) {
      trainers_awaiting_rollback_.clear();  // no rollback will come
      recovering_ = false;
      unusable(info.status());
    } else {
      // Only now: a restore that finds no usable checkpoint leaves the one being taken alone.
      AbandonCheckpoint(absl::StrCat("restore of checkpoint ", info->id));
      table_.BumpEpoch();
      PlacementChanged();
      checkpoints_->Tell(RestoreCheckpoint{info->id, RestoreTargets(), table_.epoch(), restore_generation_});
    }
    EndTurn();
  });
}

void ClusterActor::HoldTrainersUntilRollback() {
  ++restore_generation_;
  for (const NodeInfo& trainer : membership_.Nodes(NodeRole::kTrainer)) {
    if (trainer.alive) trainers_awaiting_rollback_.insert(trainer.id);
  }
}

void ClusterActor::OnCheckpointEvent(const CheckpointEvent& event) {
  checkpoint_ = event.snapshot;
  switch (event.kind) {
    case CheckpointEvent::Kind::kStarted:
      // A checkpoint that began before this actor ordered live moves with an earlier
      // boundary (it had not seen the start yet) asks the old holders for a step their
      // moved actors will not reach there: it could only time out, holding up every later
      // checkpoint. Void; the next one begins once the moves are done.
      if (live_moves_ && live_moves_->last_source_step < event.step) {
        AbandonCheckpoint(absl::StrCat("live moves after step ", live_moves_->last_source_step,
                                       ", before its step ", event.step));
      }
      return;
    case CheckpointEvent::Kind::kCommitted:
      storage_problem_.clear();  // the database takes writes again
      outcome_seen_ = std::max(outcome_seen_, event.id);
      if (!options_.live_moves) MaybeAutoRebalance(event.id, event.step);
      if (!recovering_ && !live_moves_) AdmitWaitingHosts();
      checkpoint_due_ = true;  // not while the rebalance's restore runs (not ready): the restore asks again
      return;
    case CheckpointEvent::Kind::kFailed:
      outcome_seen_ = std::max(outcome_seen_, event.id);
      if (event.storage_failed) {
        StorageFailed(absl::StrCat("checkpoint ", event.id, " at step ", event.step, " could not be written"),
                      event.status);
      } else {
        SY_LOG(WARNING) << "checkpoint " << event.id << " failed: " << event.status;
      }
      if (event.status.code() != absl::StatusCode::kCancelled) checkpoint_due_ = true;  // not while shutting down
      return;
    case CheckpointEvent::Kind::kRestored:
    case CheckpointEvent::Kind::kRestoreFailed:
      if (event.restore_generation != restore_generation_) {
        // A later failure began another restore (its hosts are already being replaced, and
        // chunks sent to a host just declared dead fail at once): that one decides.
        SY_LOG(INFO) << "restore of checkpoint " << event.id << " superseded by a newer recovery ("
                     << (event.status.ok() ? "it had finished" : event.status.ToString()) << ")";
        return;
      }
      return event.kind == CheckpointEvent::Kind::kRestored ? OnRestored(event) : OnRestoreFailed(event);
  }
  SY_LOG(ERROR) << "unknown checkpoint event " << static_cast<int>(event.kind);
}

void ClusterActor::StorageFailed(const std::string& what, const absl::Status& status) {
  const std::string kept = checkpoint_.latest_id == 0
                               ? std::string("no checkpoint is committed yet")
                               : absl::StrCat("checkpoint ", checkpoint_.latest_id, " (step ", checkpoint_.latest_step,
                                              ") stays the latest and is used for recovery");
  storage_problem_ = absl::StrCat(what, " (", status.message(), "); ", kept);
  SY_LOG(ERROR) << "storage: " << storage_problem_;
}

void ClusterActor::OnRestored(const CheckpointEvent& event) {
  SY_LOG(INFO) << "checkpoint " << event.id << " restored (step " << event.step << ")";
  recovering_ = false;
  phase_ = "training";
  step_ = event.step;
  trainer_step_ = event.step;  // the trainers replay from there
  // Loads are measured afresh from here: the next automatic rebalance waits its
  // --rebalance_every_steps (a live move ordered while the trainers were still coming
  // back from the rollback stalled a resumed run).
  last_auto_rebalance_step_ = event.step;
  RollbackTrainers(event.step, event.id);
  failure_detected_unix_ms_ = 0;  // the trainers were told
  if (pending_restore_) {
    ReplyCheckpointId(event.id, table_.epoch(), *pending_restore_);
    pending_restore_.reset();
  }
  checkpoint_due_ = true;
}

void ClusterActor::OnRestoreFailed(const CheckpointEvent& event) {
  SY_LOG(ERROR) << "restore of checkpoint " << event.id << " failed: " << event.status;
  recovering_ = false;
  trainers_awaiting_rollback_.clear();  // no rollback will come
  phase_ = absl::StrCat("degraded: restore of checkpoint ", event.id, " failed");
  // Some actors may hold the checkpoint's state and others not: nothing consistent to train on.
  StopTrainers(absl::StrCat("restore of checkpoint ", event.id, " failed: ", event.status.message()));
  if (pending_restore_) {
    pending_restore_->Fail(event.status);
    pending_restore_.reset();
  }
}

}  // namespace sy::coordinator
