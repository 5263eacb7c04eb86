// What hosts and tools send the checkpoints: state chunks of the checkpoint being
// taken (stored, and the manifest committed once every actor is complete) and
// manifest queries (see checkpoint_actor.h).
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/checkpoint.capnp.h"
#include "services/cluster/envelope.h"
#include "services/coordinator/checkpoint_actor.h"

namespace sy::coordinator {

void CheckpointActor::OnChunk(CheckpointRequest& request) {
  auto body = request.message.Body<proto::checkpoint::ChunkRequest>();
  if (!body.ok()) return request.responder.Fail(body.status());
  const uint64_t id = body->getCheckpointId();
  if (!taking_ || taking_->info.id != id) {
    return request.responder.Fail(absl::FailedPreconditionError(absl::StrCat("checkpoint ", id, " is not being taken")));
  }
  auto actor = cluster::ActorKey::FromProto(body->getActor());
  if (!actor.ok()) return request.responder.Fail(actor.status());
  auto slot = taking_->actors.find(*actor);
  if (slot == taking_->actors.end()) {
    return request.responder.Fail(absl::InvalidArgumentError(
        absl::StrCat("checkpoint ", id, " does not include actor ", actor->ToString())));
  }
  const auto chunk = body->getChunk();
  if (chunk.getCount() == 0 || chunk.getIndex() >= chunk.getCount()) {
    return request.responder.Fail(absl::InvalidArgumentError(
        absl::StrCat("chunk index ", chunk.getIndex(), " of ", chunk.getCount())));
  }
  if (chunk.getVersion() != taking_->info.step) {
    return request.responder.Fail(absl::FailedPreconditionError(absl::StrCat(
        "actor ", actor->ToString(), " state has version ", chunk.getVersion(), ", checkpoint wants ", taking_->info.step)));
  }
  if (request.message.message().data.size() != 1) {
    return request.responder.Fail(absl::InvalidArgumentError("a chunk carries exactly one state frame"));
  }
  const transport::Frame& frame = request.message.data(0);
  absl::Status stored = store_->PutChunk(id, *actor, chunk.getIndex(),
                                         absl::string_view(reinterpret_cast<const char*>(frame.data()), frame.size()));
  if (!stored.ok()) {
    request.responder.Fail(stored);
    return Finish(stored, /*storage_failed=*/true);
  }
  capnp::MallocMessageBuilder b;
  auto reply = cluster::InitBody<proto::checkpoint::ChunkReply>(b, proto::MessageKind::CHECKPOINT_CHUNK);
  reply.setCheckpointId(id);
  reply.setStored(true);
  request.responder.Reply(b);

  std::set<uint32_t>& received = taking_->chunks_received[*actor];
  received.insert(chunk.getIndex());  // a chunk sent twice counts once
  if (received.size() == chunk.getCount() && !slot->second) {
    slot->second = ActorStateEntry{*actor, chunk.getVersion(), chunk.getTotalBytes(), chunk.getCount(), chunk.getChecksum()};
  }
  for (const auto& [key, entry] : taking_->actors) {
    if (!entry) return;
  }
  CheckpointInfo info = taking_->info;
  for (const auto& [key, entry] : taking_->actors) info.actors.push_back(*entry);
  info.created_unix_ms = absl::ToUnixMillis(absl::Now());
  if (options_.kill_self_before_manifest_of_checkpoint == id) raise(SIGKILL);  // fault injection (tests)
  absl::Status committed = store_->Commit(info);
  const bool storage_failed = !committed.ok();
  Finish(std::move(committed), storage_failed);
}

void CheckpointActor::OnManifestRequest(CheckpointRequest& request) {
  auto body = request.message.Body<proto::checkpoint::ManifestRequest>();
  if (!body.ok()) return request.responder.Fail(body.status());
  std::vector<CheckpointInfo> manifests;
  switch (body->which()) {
    case proto::checkpoint::ManifestRequest::GET: {
      auto info = store_->Get(body->getGet());
      if (!info.ok()) return request.responder.Fail(info.status());
      manifests.push_back(*std::move(info));
      break;
    }
    case proto::checkpoint::ManifestRequest::LATEST: {
      auto info = store_->LatestUsable();
      if (info.ok()) manifests.push_back(*std::move(info));
      break;
    }
    case proto::checkpoint::ManifestRequest::LIST: {
      auto list = store_->List();
      if (!list.ok()) return request.responder.Fail(list.status());
      manifests = *std::move(list);
      break;
    }
    default:
      return request.responder.Fail(absl::InvalidArgumentError("unknown manifest request"));
  }
  capnp::MallocMessageBuilder b;
  auto reply = cluster::InitBody<proto::checkpoint::ManifestReply>(b, proto::MessageKind::CHECKPOINT_MANIFEST);
  auto out = reply.initManifests(static_cast<unsigned>(manifests.size()));
  for (size_t i = 0; i < manifests.size(); ++i) InfoToProto(manifests[i], out[i]);
  request.responder.Reply(b);
}

}  // namespace sy::coordinator
