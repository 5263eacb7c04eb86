// The ClusterActor's live moves (see cluster_actor.h): a migration (or a new replica)
// between live hosts takes effect at a step boundary S+1, S a few steps ahead of the newest step reported.
// The table (a new epoch) names the moves and S; the old host serves the actor up to
// step S and streams its state at version S straight to the new host, which serves
// S+1 on; every host keeps serving the previous epoch's requests until it applied S,
// and the trainers take the new table when a host refuses their old epoch after that.
// Nothing is restored, nothing replayed. A failed host during the move recovers as
// any failure does (checkpoint), and so does a move that sees no progress.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "services/coordinator/cluster_actor.h"

namespace sy::coordinator {

absl::Status ClusterActor::CanMoveLive(const std::vector<cluster::Move>& moves) const {
  if (!options_.live_moves) return absl::FailedPreconditionError("live moves are off (--live_moves=false)");
  if (!table_.initialized()) return absl::FailedPreconditionError("no placement yet");
  for (const cluster::Move& m : moves) {
    if (m.to.empty()) {
      // A copy dropped from a live host (a drain of a replica's holder): the other holders
      // would change how they split and exchange the actor's micro-batches at the boundary
      // while the trainers' table already names them alone, so it goes through a checkpoint.
      const NodeInfo* node = membership_.Find(m.from);
      if (node != nullptr && node->alive) {
        return absl::FailedPreconditionError(
            absl::StrCat(m.actor.ToString(), " loses its copy on ", m.from, ", which is alive: not done live"));
      }
      continue;
    }
    for (const std::string& host : {m.from, m.to}) {
      const NodeInfo* node = membership_.Find(host);
      if (node == nullptr || !node->alive) {
        return absl::UnavailableError(absl::StrCat(m.actor.ToString(), ": host '", host, "' is not alive"));
      }
    }
  }
  return absl::OkStatus();
}

void ClusterActor::StartLiveMoves(const std::vector<cluster::Move>& moves, const std::string& why) {
  const uint64_t reached = std::max(step_, trainer_step_);
  // Not before the step of a checkpoint being taken: the old hosts stream that too.
  const uint64_t last_source_step = std::max(reached + options_.live_move_lead_steps,
                                             checkpoint_.in_progress_id != 0 ? checkpoint_.in_progress_step : 0);
  table_.MarkLive(moves, last_source_step);
  live_moves_ = LiveMovesInFlight{last_source_step, table_.live_moves().size(), reached, absl::Now(),
                                  table_.epoch() - 1};
  phase_ = absl::StrCat("moving actors live after step ", last_source_step);
  SY_LOG(INFO) << why << ": " << table_.live_moves().size() << " actors move live after step " << last_source_step
               << " (placement epoch " << table_.epoch() << ", step " << reached << " reached)";
  PlacementChanged();
}

uint64_t ClusterActor::HeartbeatEpoch() const {
  return live_moves_ ? live_moves_->previous_epoch : table_.epoch();
}

void ClusterActor::OnProgressForLiveMoves() {
  if (!live_moves_) return;
  const uint64_t reached = std::max(step_, trainer_step_);
  if (reached > live_moves_->progress_step) {
    live_moves_->progress_step = reached;
    live_moves_->progress_at = absl::Now();
  }
  // A host applied the step after the boundary (a trainer reports a step's load once it
  // committed it, so one step later): every moved actor served it on its new host (that
  // step's close needs every actor, the moved ones too).
  const uint64_t boundary = live_moves_->last_source_step;
  if (step_ <= boundary && trainer_step_ <= boundary + 1) return;
  SY_LOG(INFO) << live_moves_->count << " live moves after step " << live_moves_->last_source_step << " done";
  live_moves_.reset();
  phase_ = "training";
  table_.ForgetLiveMoves();
  PlacementChanged();  // same epoch, no moves: the old hosts drop what they streamed away
  AdmitWaitingHosts();  // hosts that registered meanwhile take their share now
}

void ClusterActor::CheckLiveMoveProgress() {
  if (!live_moves_ || absl::Now() - live_moves_->progress_at < options_.live_move_timeout) return;
  const uint64_t boundary = live_moves_->last_source_step;
  live_moves_.reset();
  ++recoveries_;
  if (metrics_.recoveries != nullptr) metrics_.recoveries->Increment();
  Recover(absl::StrCat("the live moves after step ", boundary, " made no progress for ",
                       absl::FormatDuration(options_.live_move_timeout), ": falling back to the latest checkpoint"));
}

}  // namespace sy::coordinator
