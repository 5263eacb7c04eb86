// The expert host's side of state streaming (proto/expert.capnp StateStreamRequest,
// checkpoints in proto/checkpoint.capnp): a streamOut takes the actor's state exactly
// at version atStep (the actor parks the request until it gets there) and streams it
// to the coordinator that asked, as checkpoint chunks through the coordinator link; a
// chunkIn is collected chunk by chunk and, once the last one verifies (size,
// checksum; the announced size must be the actor's real state size and only a few
// restores are assembled at once), installed, which rolls the step protocol back to its version (the actor
// and the StepActor drop the open step and answer its waiting requests Aborted); an
// actor placed here at runtime starts serving once its restore landed. With
// --fail_checkpoint_at_step (tests) the experts refuse one checkpoint; with
// --kill_self_while_streaming_at_step (tests) the host dies in the middle of one: its
// experts hold their state back, and the first dense shard's acknowledged stream kills it.
#include <signal.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/expert.capnp.h"
#include "common/transport/refusals.h"
#include "services/expert_host/host_metrics.h"
#include "services/expert_host/host_reply.h"
#include "services/expert_host/host_service.h"

namespace sy::expert_host {
namespace {

void ReplyStream(transport::Responder& responder, const cluster::ActorKey& actor, uint32_t chunks, bool complete) {
  ReplyWith<proto::expert::StateStreamReply>(responder, proto::MessageKind::STATE_STREAM, [&](auto reply) {
    actor.ToProto(reply.initActor());
    reply.setChunksReceived(chunks);
    reply.setComplete(complete);
  });
}

// A refused chunk, counted in sy_refused_total by the bound it hit.
absl::Status CountedChunkRefusal(metrics::Registry* registry, absl::Status status) {
  switch (status.code()) {
    case absl::StatusCode::kResourceExhausted: return transport::Refuse(registry, "concurrent_restores", std::move(status));
    case absl::StatusCode::kInvalidArgument: return transport::Refuse(registry, "restore_chunk", std::move(status));
    default: return status;
  }
}

}  // namespace

absl::Status HostService::HandleStateStream(const transport::DecodedMessage& request,
                                            transport::Responder responder) {
  auto body = request.Body<proto::expert::StateStreamRequest>();
  if (!body.ok()) return body.status();
  absl::StatusOr<cluster::ActorKey> key = cluster::ActorKey::FromProto(body->getActor());
  if (!key.ok()) return key.status();
  switch (body->which()) {
    case proto::expert::StateStreamRequest::STREAM_OUT: return StreamOut(request, *body, *key, responder);
    case proto::expert::StateStreamRequest::CHUNK_IN: return ChunkIn(request, *body, *key, responder);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown state stream request (union member ", static_cast<int>(body->which()), ")"));
}

absl::Status HostService::StreamOut(const transport::DecodedMessage& request,
                                    proto::expert::StateStreamRequest::Reader body, const cluster::ActorKey& key,
                                    transport::Responder responder) {
  const auto out = body.getStreamOut();
  if (absl::Status s = RequestDoor::CheckStreamOut(request, out); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<ParamActor>> actor = held_.Held(key);
  if (!actor.ok()) return actor.status();
  cluster::CoordinatorLink* link;
  {
    absl::MutexLock lock(&coordinator_mu_);
    link = coordinator_;
  }
  if (link == nullptr) return absl::FailedPreconditionError("expert host: no coordinator link to stream to");
  SnapshotMsg snapshot;
  snapshot.version = out.getAtStep();
  snapshot.deadline = request.deadline() != absl::InfiniteFuture() ? request.deadline() : absl::Now() + absl::Minutes(2);
  const uint64_t checkpoint_id = body.getCheckpointId();
  const uint64_t step = out.getAtStep();
  const uint64_t chunk_bytes = out.getChunkBytes();
  snapshot.done = [this, link, responder, key, checkpoint_id, step,
                   chunk_bytes](absl::StatusOr<std::string> state) mutable {
    if (!state.ok()) return FailAndCount(registry_, responder, state.status());
    if (!key.dense && config_.fail_checkpoint_at_step == step) {
      return FailAndCount(registry_, responder,
                          absl::UnavailableError(absl::StrCat("refusing to stream ", key.ToString(), " at step ", step,
                                                              " (--fail_checkpoint_at_step, fault injection)")));
    }
    const bool dying = config_.kill_self_while_streaming_at_step == step;
    if (dying && !key.dense) return;  // fault injection: dead before its experts stream
    auto bytes = std::make_shared<const std::string>(*std::move(state));
    link->StreamCheckpoint(checkpoint_id, step, key, bytes, chunk_bytes,
                           [this, responder, key, dying](absl::Status s, uint32_t chunks) mutable {
                             if (!s.ok()) return FailAndCount(registry_, responder, s);
                             if (dying) raise(SIGKILL);
                             ReplyStream(responder, key, chunks, true);
                           });
  };
  (*actor)->Tell(std::move(snapshot));
  return absl::OkStatus();
}

absl::Status HostService::ChunkIn(const transport::DecodedMessage& request,
                                  proto::expert::StateStreamRequest::Reader body, const cluster::ActorKey& key,
                                  transport::Responder responder) {
  if (absl::Status s = model_.CheckKey(key); !s.ok()) return absl::NotFoundError(s.message());
  const auto in = body.getChunkIn();
  if (absl::Status s = RequestDoor::CheckChunk(request, in); !s.ok()) return s;
  absl::StatusOr<std::optional<std::string>> whole = restoring_.Add(
      key, in, request.data(0), body.getCheckpointId(), static_cast<uint64_t>(model_.StateBytes(key)));
  if (!whole.ok()) return CountedChunkRefusal(registry_, whole.status());
  if (!whole->has_value()) {
    ReplyStream(responder, key, in.getIndex() + 1, false);
    return absl::OkStatus();
  }
  // Handed the actor by the placement actor: a table handled before this chunk (it may
  // have placed the actor here) is in force by then.
  placement_->Tell(WithActorMsg{key, [this, responder, key, chunks = in.getCount(), version = in.getVersion(),
                                      bytes = **std::move(whole)](
                                         absl::StatusOr<std::shared_ptr<ParamActor>> actor) mutable {
    if (!actor.ok()) return FailAndCount(registry_, responder, actor.status());
    RestoreMsg restore;
    restore.version = version;
    restore.bytes = std::move(bytes);
    restore.done = [this, responder, key, chunks, version,
                    restored = std::weak_ptr<ParamActor>(*actor)](absl::Status s) mutable {
      if (!s.ok()) return FailAndCount(registry_, responder, s);
      held_.MarkRestored(key, restored.lock());
      RollBackTo(version);
      ReplyStream(responder, key, chunks, true);
    };
    (*actor)->Tell(std::move(restore));
  }});
  return absl::OkStatus();
}

}  // namespace sy::expert_host
