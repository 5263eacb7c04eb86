// The expert host's side of checkpoints (proto/checkpoint.capnp): a stateStream
// {checkpoint, streamOut} takes the actor's state exactly at version atStep (the
// actor parks the request until it gets there) and streams it to the coordinator
// as chunks through the coordinator link; a stateStream {checkpoint, chunkIn}
// collects a restored state chunk by chunk and, once the last one verifies
// (size, checksum), installs it and rolls the step protocol back to its version
// (the actor and the StepActor drop the open step and answer its waiting requests
// Aborted); an actor placed here at runtime starts serving once its restore landed.
// Migration and replication streams are not served (FailedPrecondition). With
// --fail_checkpoint_at_step (tests) the experts refuse one checkpoint.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/fnv1a.h"
#include "common/log/log.h"
#include "proto/expert.capnp.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/envelope.h"
#include "services/expert_host/host_metrics.h"
#include "services/expert_host/host_service.h"

namespace sy::expert_host {
namespace {

void ReplyStream(transport::Responder& responder, const cluster::ActorKey& actor, uint32_t chunks,
                 bool complete) {
  capnp::MallocMessageBuilder b;
  auto reply = cluster::InitBody<proto::expert::StateStreamReply>(b, proto::MessageKind::STATE_STREAM);
  actor.ToProto(reply.initActor());
  reply.setChunksReceived(chunks);
  reply.setComplete(complete);
  responder.Reply(b);
}

}  // namespace

absl::StatusOr<std::shared_ptr<ParamActor>> HostService::ActorOf(const cluster::ActorKey& actor) const {
  if (absl::Status s = CheckKey(actor); !s.ok()) return absl::NotFoundError(s.message());
  absl::MutexLock lock(&actors_mu_);
  auto it = actors_.find(actor);
  if (it == actors_.end()) {
    return absl::NotFoundError(absl::StrCat(actor.ToString(), " is not on host ", config_.host_index,
                                            " in placement epoch ", placement_epoch_.load()));
  }
  return it->second;
}

absl::Status HostService::HandleStateStream(const transport::DecodedMessage& request, transport::Responder responder) {
  auto body = request.Body<proto::expert::StateStreamRequest>();
  if (!body.ok()) return body.status();
  absl::StatusOr<cluster::ActorKey> key = cluster::ActorKey::FromProto(body->getActor());
  if (!key.ok()) return key.status();
  if (body->getPurpose() != proto::expert::StatePurpose::CHECKPOINT) {
    return absl::FailedPreconditionError("expert host: migration and replication streams are not served yet");
  }
  if (body->which() == proto::expert::StateStreamRequest::STREAM_OUT) {
    absl::StatusOr<std::shared_ptr<ParamActor>> actor = ActorOf(*key);
    if (!actor.ok()) return actor.status();
    cluster::CoordinatorLink* link = coordinator_.load();
    if (link == nullptr) return absl::FailedPreconditionError("expert host: no coordinator link to stream to");
    const auto out = body->getStreamOut();
    const int64_t deadline_ms = request.envelope().getDeadlineUnixMs();
    SnapshotMsg snapshot;
    snapshot.version = out.getAtStep();
    snapshot.deadline = deadline_ms > 0 ? absl::FromUnixMillis(deadline_ms) : absl::Now() + absl::Minutes(2);
    const uint64_t checkpoint_id = body->getCheckpointId();
    const uint64_t step = out.getAtStep();
    const uint64_t chunk_bytes = out.getChunkBytes();
    snapshot.done = [this, link, responder, key = *key, checkpoint_id, step,
                     chunk_bytes](absl::StatusOr<std::string> state) mutable {
      if (!state.ok()) return FailAndCount(registry_, responder, state.status());
      if (!key.dense && step == config_.fail_checkpoint_at_step) {
        return FailAndCount(registry_, responder,
                            absl::UnavailableError(absl::StrCat("refusing to stream ", key.ToString(), " at step ", step,
                                                                " (--fail_checkpoint_at_step, fault injection)")));
      }
      auto bytes = std::make_shared<const std::string>(*std::move(state));
      link->StreamCheckpoint(checkpoint_id, step, key, bytes, chunk_bytes,
                             [this, responder, key](absl::Status s, uint32_t chunks) mutable {
                               if (!s.ok()) return FailAndCount(registry_, responder, s);
                               ReplyStream(responder, key, chunks, true);
                             });
    };
    (*actor)->Tell(std::move(snapshot));
    return absl::OkStatus();
  }
  // chunkIn: one chunk of a restored state; the whole state is installed after the last.
  if (absl::Status s = CheckKey(*key); !s.ok()) return absl::NotFoundError(s.message());
  const auto in = body->getChunkIn();
  if (request.message().data.size() != 1) return absl::InvalidArgumentError("a state chunk carries one frame");
  const transport::Frame& frame = request.data(0);
  if (in.getCount() == 0 || in.getIndex() >= in.getCount()) {
    return absl::InvalidArgumentError(absl::StrCat("chunk ", in.getIndex(), " of ", in.getCount()));
  }
  std::string whole;
  {
    absl::MutexLock lock(&restore_mu_);
    std::string& bytes = restoring_[*key];
    if (in.getIndex() == 0) bytes.clear();
    if (in.getOffset() != bytes.size() || bytes.size() + frame.size() > in.getTotalBytes()) {
      restoring_.erase(*key);
      return absl::InvalidArgumentError(absl::StrCat("state chunk ", in.getIndex(), " of ", key->ToString(),
                                                     " at offset ", in.getOffset(), " does not follow the ",
                                                     bytes.size(), " bytes received"));
    }
    bytes.append(reinterpret_cast<const char*>(frame.data()), frame.size());
    if (in.getIndex() + 1 < in.getCount()) {
      ReplyStream(responder, *key, in.getIndex() + 1, false);
      return absl::OkStatus();
    }
    whole = std::move(bytes);
    restoring_.erase(*key);
  }
  if (whole.size() != in.getTotalBytes() || ChecksumOf(whole) != in.getChecksum()) {
    return absl::DataLossError(absl::StrCat("restored state of ", key->ToString(), " does not verify"));
  }
  // The actor is looked up on the placement strand: a table handled before this chunk
  // (it may have placed the actor here) is in force by then.
  placement_strand_->Post([this, responder, key = *key, chunks = in.getCount(), version = in.getVersion(),
                           bytes = std::move(whole)]() mutable {
    absl::StatusOr<std::shared_ptr<ParamActor>> actor = ActorOf(key);
    if (!actor.ok()) return FailAndCount(registry_, responder, actor.status());
    RestoreMsg restore;
    restore.version = version;
    restore.bytes = std::move(bytes);
    restore.done = [this, responder, key, chunks, version,
                    restored = std::weak_ptr<ParamActor>(*actor)](absl::Status s) mutable {
      if (!s.ok()) return FailAndCount(registry_, responder, s);
      {
        absl::MutexLock lock(&actors_mu_);
        auto it = actors_.find(key);
        if (it != actors_.end() && it->second == restored.lock()) awaiting_restore_.erase(key);
      }
      // Requests naming steps after `version` belonged to the abandoned timeline.
      uint64_t seen = highest_step_seen_.load();
      while (seen > version && !highest_step_seen_.compare_exchange_weak(seen, version)) {
      }
      step_->Tell(RollbackMsg{version});
      ReplyStream(responder, key, chunks, true);
    };
    (*actor)->Tell(std::move(restore));
  });
  return absl::OkStatus();
}

}  // namespace sy::expert_host
