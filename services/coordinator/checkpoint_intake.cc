// What hosts and tools send the checkpoints: state chunks of the checkpoint being
// taken (stored, and the manifest committed once every actor is complete) and
// manifest queries (see checkpoint_actor.h).
#include <signal.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/transport/refusals.h"
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
  if (chunk.getVersion() != taking_->info.step) {
    return request.responder.Fail(absl::FailedPreconditionError(absl::StrCat(
        "actor ", actor->ToString(), " state has version ", chunk.getVersion(), ", checkpoint wants ", taking_->info.step)));
  }
  if (request.message.message().data.size() != 1) {
    return request.responder.Fail(absl::InvalidArgumentError("a chunk carries exactly one state frame"));
  }
  // The sender's authenticated name (over CURVE with an allowlist), else the name it gives.
  const transport::Message& wire = request.message.message();
  const std::string sender = wire.peer_name.empty() ? request.message.envelope().getSender().cStr() : wire.peer_name;
  if (absl::Status s = CheckChunk(sender, *actor, chunk, request.message.data(0).size()); !s.ok()) {
    return request.responder.Fail(s);
  }
  const transport::Frame& frame = request.message.data(0);
  if (taking_->chunks.count(*actor) == 0) {
    taking_->chunks[*actor] = ActorChunks{chunk.getCount(), chunk.getTotalBytes(), chunk.getChecksum(), {}};
  }
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

  std::set<uint32_t>& received = taking_->chunks[*actor].received;
  received.insert(chunk.getIndex());
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

absl::Status CheckpointActor::CheckChunk(const std::string& sender, const cluster::ActorKey& actor,
                                        proto::expert::ChunkIn::Reader chunk, size_t bytes) {
  const std::string what = absl::StrCat("chunk ", chunk.getIndex(), " of ", actor.ToString(), " for checkpoint ",
                                        taking_->info.id, " from ", sender);
  if (taking_->asked[actor] != sender) {
    return transport::Refuse(registry_, "permission", absl::PermissionDeniedError(absl::StrCat(
        what, " refused: the coordinator asked ", taking_->asked[actor], " to stream this actor")));
  }
  const uint64_t chunk_bytes = options_.chunk_bytes;
  const uint64_t total = chunk.getTotalBytes();
  const uint64_t count = std::max<uint64_t>(1, total / chunk_bytes + (total % chunk_bytes != 0));
  auto refuse = [&](const std::string& why) {
    return transport::Refuse(registry_, "chunk", absl::InvalidArgumentError(absl::StrCat(what, " refused: ", why)));
  };
  if (chunk.getCount() != count) {
    return refuse(absl::StrCat("a state of ", total, " bytes comes in ", count, " chunks of ", chunk_bytes,
                               " bytes, not ", chunk.getCount()));
  }
  if (chunk.getIndex() >= count) return refuse(absl::StrCat("index beyond the ", count, " chunks"));
  const uint64_t offset = uint64_t{chunk.getIndex()} * chunk_bytes;
  const uint64_t expected_bytes = std::min(chunk_bytes, total - offset);
  if (chunk.getOffset() != offset || bytes != expected_bytes) {
    return refuse(absl::StrCat("a chunk at index ", chunk.getIndex(), " has offset ", offset, " and ", expected_bytes,
                               " bytes, not offset ", chunk.getOffset(), " and ", bytes, " bytes"));
  }
  auto declared = taking_->chunks.find(actor);
  if (declared == taking_->chunks.end()) return absl::OkStatus();  // the first chunk declares the state
  const ActorChunks& first = declared->second;
  if (first.total_bytes != total || first.checksum != chunk.getChecksum()) {
    return refuse(absl::StrCat("its state was declared as ", first.total_bytes, " bytes with checksum ",
                               first.checksum, ", not ", total, " bytes with checksum ", chunk.getChecksum()));
  }
  if (first.received.count(chunk.getIndex()) != 0) return refuse("a duplicate of a chunk already stored");
  return absl::OkStatus();
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
