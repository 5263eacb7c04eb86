// The checkpoints' life: when to take one, asking the hosts to stream, commit and
// abandon, and the catalog queries (see checkpoint_actor.h). Chunk intake is in
// checkpoint_intake.cc, restores in checkpoint_restore.cc.
#include "services/coordinator/checkpoint_actor.h"

#include <algorithm>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "services/coordinator/admin_replies.h"
#include "services/coordinator/host_snapshots.h"

namespace sy::coordinator {

bool ClusterProgress::operator==(const ClusterProgress& o) const {
  return step == o.step && epoch == o.epoch && ready == o.ready && stream_from == o.stream_from &&
         finished_at_step == o.finished_at_step && outcome_seen == o.outcome_seen &&
         checkpoint_due == o.checkpoint_due && abandon_reason == o.abandon_reason;
}

CheckpointActor::CheckpointActor(actor::Executor& executor, const CoordinatorOptions& options, std::string endpoint,
                                 CheckpointStore* store, transport::RpcNode* rpc,
                                 std::function<void(CheckpointEvent)> on_event, metrics::Registry* registry)
    : Actor(executor, "coordinator-checkpoints", registry),
      options_(options),
      endpoint_(std::move(endpoint)),
      store_(store),
      rpc_(rpc),
      on_event_(std::move(on_event)),
      registry_(registry) {
  if (registry != nullptr) {
    committed_metric_ = &registry->GetCounter("sy_coordinator_checkpoints_total", "Checkpoints ended.",
                                              {{"result", "committed"}});
    failed_metric_ = &registry->GetCounter("sy_coordinator_checkpoints_total", "Checkpoints ended.",
                                           {{"result", "failed"}});
  }
  Become("serving", [this](CheckpointMsg& msg) { Handle(msg); });
}

absl::StatusOr<CheckpointSnapshot> CheckpointActor::Start() {
  auto list = store_->List();
  if (!list.ok()) return list.status();
  for (const CheckpointInfo& info : *list) {
    if (info.id > latest_id_) {
      latest_id_ = info.id;
      latest_step_ = info.step;
    }
    auto_target_ = std::max(auto_target_, info.step);
  }
  next_id_ = latest_id_ + 1;
  last_finished_id_ = latest_id_;
  cluster_.outcome_seen = latest_id_;
  return Snapshot();
}

void CheckpointActor::Handle(CheckpointMsg& msg) {
  std::visit(
      [this](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, CheckpointRequest>) {
          OnRequest(m);
        } else if constexpr (std::is_same_v<T, ClusterProgress>) {
          OnProgress(m);
        } else if constexpr (std::is_same_v<T, TakeCheckpointNow>) {
          OnTakeNow(m);
        } else if constexpr (std::is_same_v<T, RestoreCheckpoint>) {
          OnRestore(m);
        } else if constexpr (std::is_same_v<T, StreamFailed>) {
          OnStreamFailed(m);
        } else if constexpr (std::is_same_v<T, RestoreCallDone>) {
          OnRestoreCallDone(m);
        } else if constexpr (std::is_same_v<T, CheckpointDeadline>) {
          OnDeadline(m);
        } else if constexpr (std::is_same_v<T, QueryLatestUsable>) {
          OnQueryLatestUsable();
        } else if constexpr (std::is_same_v<T, QueryVerified>) {
          OnQueryVerified(m);
        } else {
          static_assert(sizeof(T) == 0, "CheckpointActor does not handle this message");
        }
      },
      msg);
}

void CheckpointActor::OnRequest(CheckpointRequest& request) {
  switch (request.message.envelope().getKind()) {
    case proto::MessageKind::CHECKPOINT_CHUNK:
      return OnChunk(request);
    case proto::MessageKind::CHECKPOINT_MANIFEST:
      return OnManifestRequest(request);
    case proto::MessageKind::ADMIN:
      return OnCheckpointList(request);
    default:
      return request.responder.Fail(absl::UnimplementedError("checkpoints: unexpected message kind"));
  }
}

void CheckpointActor::OnProgress(ClusterProgress& progress) {
  const std::string abandon_reason = std::move(progress.abandon_reason);
  const bool due = progress.checkpoint_due;
  cluster_ = std::move(progress);
  if (!abandon_reason.empty() && taking_) Finish(absl::AbortedError(abandon_reason));
  if (taking_ && cluster_.finished_at_step && taking_->info.step > *cluster_.finished_at_step) {
    // Training is over: the hosts stay at that step, so this checkpoint would wait in vain.
    Finish(absl::AbortedError(absl::StrCat("every trainer finished at step ", *cluster_.finished_at_step, ": step ",
                                           taking_->info.step, " will not come")));
  }
  if (due) MaybeAutoCheckpoint();
}

void CheckpointActor::OnTakeNow(TakeCheckpointNow& take) {
  if (const uint64_t busy = UnderWay(); busy != 0) {
    return take.responder.Fail(
        absl::FailedPreconditionError(absl::StrCat("checkpoint ", busy, " is still being taken")));
  }
  ReplyCheckpointId(Begin(take.step), cluster_.epoch, take.responder);
}

void CheckpointActor::OnStreamFailed(const StreamFailed& failed) {
  if (taking_ && taking_->info.id == failed.id) Finish(failed.status);
}

void CheckpointActor::OnDeadline(const CheckpointDeadline& deadline) {
  if (taking_ && taking_->info.id == deadline.id) {
    Finish(absl::DeadlineExceededError(absl::StrCat("checkpoint ", deadline.id, " not complete in time")));
  }
}

void CheckpointActor::OnQueryLatestUsable() {
  auto latest = store_->LatestUsable();
  if (latest.ok()) {
    Reply(*std::move(latest));
  } else {
    ReplyError(latest.status());
  }
}

void CheckpointActor::OnQueryVerified(const QueryVerified& query) {
  auto info = store_->Get(query.id);
  absl::Status verified = info.ok() ? store_->Verify(query.id) : info.status();
  if (verified.ok()) {
    Reply(*std::move(info));
  } else {
    ReplyError(verified);
  }
}

void CheckpointActor::OnCheckpointList(CheckpointRequest& request) {
  auto list = store_->List();
  if (!list.ok()) return request.responder.Fail(list.status());
  ReplyCheckpointList(*list, request.responder);
}

uint64_t CheckpointActor::UnderWay() const {
  if (taking_) return taking_->info.id;
  return cluster_.outcome_seen < last_finished_id_ ? last_finished_id_ : 0;
}

void CheckpointActor::MaybeAutoCheckpoint() {
  if (options_.checkpoint_every == 0 || !cluster_.ready || UnderWay() != 0) return;
  const uint64_t n = options_.checkpoint_every;
  const uint64_t step = cluster_.step;
  const uint64_t newest = step / n * n;
  // The next multiple of N, asked for ahead when the hosts have not reached it yet
  // (they stream it when they get there). Hosts keep the state of their last
  // kHostSnapshotsKept multiples of N; an older one is gone, so the oldest kept is taken instead.
  uint64_t target = auto_target_ + n;
  const uint64_t oldest_kept = newest >= (kHostSnapshotsKept - 1) * n ? newest - (kHostSnapshotsKept - 1) * n : 0;
  if (target < oldest_kept) {
    SY_LOG(WARNING) << "checkpoints at steps " << target << ".." << oldest_kept - n
                    << " skipped: the hosts are at step " << step << " and keep only their last "
                    << kHostSnapshotsKept << " snapshots";
    target = oldest_kept;
  }
  if (cluster_.finished_at_step && target > *cluster_.finished_at_step) return;  // training is over before that step
  auto_target_ = target;
  Begin(target);
}

uint64_t CheckpointActor::Begin(uint64_t step) {
  const uint64_t id = next_id_++;
  (void)store_->Abandon(id);  // leftovers of an earlier attempt with this id
  Taking taking;
  taking.info.id = id;
  taking.info.step = step;
  taking.info.epoch = cluster_.epoch;
  taking.info.config_hash = options_.config_hash;
  taking.info.seed = options_.seed;
  for (const auto& [actor, host] : cluster_.stream_from) {
    taking.actors[actor] = std::nullopt;
    taking.asked[actor] = host.peer.substr(0, host.peer.find('@'));  // a host's peer is "host-N@endpoint"
  }
  taking.deadline = After(absl::ToChronoNanoseconds(options_.checkpoint_timeout),
                          [this, id] { Tell(CheckpointDeadline{id}); });
  taking_ = std::move(taking);
  SY_LOG(INFO) << "checkpoint " << id << " at step " << step << " started";
  Emit(CheckpointEvent::Kind::kStarted, id, step, absl::OkStatus());
  for (const auto& [actor, host] : cluster_.stream_from) {
    capnp::MallocMessageBuilder b;
    auto req = cluster::InitBody<proto::expert::StateStreamRequest>(b, proto::MessageKind::STATE_STREAM, cluster_.epoch);
    actor.ToProto(req.initActor());
    req.setCheckpointId(id);
    auto out = req.initStreamOut();
    out.setDestination(options_.node_id);
    out.setDestinationEndpoint(endpoint_);
    out.setAtStep(step);
    out.setChunkBytes(options_.chunk_bytes);
    std::weak_ptr<CheckpointActor> self = std::static_pointer_cast<CheckpointActor>(shared_from_this());
    rpc_->CallAsync(host, b, {}, absl::Now() + options_.checkpoint_timeout,
                    [self, id, actor = actor](absl::StatusOr<transport::DecodedMessage> reply) {
                      if (reply.ok()) return;
                      if (auto checkpoints = self.lock()) {
                        checkpoints->Tell(StreamFailed{id, absl::Status(reply.status().code(),
                                                                        absl::StrCat("streaming ", actor.ToString(),
                                                                                     ": ", reply.status().message()))});
                      }
                    });
  }
  return id;
}

void CheckpointActor::Finish(absl::Status status, bool storage_failed) {
  if (!taking_) return;
  CancelTimer(taking_->deadline);
  const uint64_t id = taking_->info.id, step = taking_->info.step;
  taking_.reset();
  last_finished_id_ = id;
  if (status.ok()) {
    SY_LOG(INFO) << "checkpoint " << id << " committed at step " << step;
    if (id > latest_id_) {
      latest_id_ = id;
      latest_step_ = step;
    }
    ++committed_;
    if (committed_metric_ != nullptr) committed_metric_->Increment();
  } else {
    SY_LOG(WARNING) << "checkpoint " << id << " abandoned: " << status;
    (void)store_->Abandon(id);
    if (failed_metric_ != nullptr) failed_metric_->Increment();
  }
  Emit(status.ok() ? CheckpointEvent::Kind::kCommitted : CheckpointEvent::Kind::kFailed, id, step, status,
       storage_failed);
}

CheckpointSnapshot CheckpointActor::Snapshot() const {
  CheckpointSnapshot s;
  s.latest_id = latest_id_;
  s.latest_step = latest_step_;
  s.in_progress_id = taking_ ? taking_->info.id : 0;
  s.in_progress_step = taking_ ? taking_->info.step : 0;
  s.committed = committed_;
  return s;
}

void CheckpointActor::Emit(CheckpointEvent::Kind kind, uint64_t id, uint64_t step, absl::Status status,
                           bool storage_failed) {
  on_event_({kind, id, step, std::move(status), storage_failed, Snapshot()});
}

}  // namespace sy::coordinator
