// The checkpoint side of the coordinator (see catalog_actor.h).
#include "services/coordinator/catalog_actor.h"


#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/fnv1a.h"
#include "common/log/log.h"
#include "proto/admin.capnp.h"
#include "proto/checkpoint.capnp.h"
#include "proto/expert.capnp.h"
#include "services/cluster/admin_reply.h"
#include "services/cluster/envelope.h"

namespace sy::coordinator {
namespace {

std::chrono::nanoseconds ToChrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

}  // namespace

CatalogActor::CatalogActor(actor::Executor& executor, CheckpointStore* store, transport::RpcNode* rpc,
                           const CoordinatorOptions& options, std::function<void(CatalogEvent)> on_event,
                           metrics::Registry* registry)
    : Actor(executor, "coordinator-catalog", registry),
      store_(store),
      rpc_(rpc),
      options_(options),
      on_event_(std::move(on_event)) {
  Become("serving", [this](CatalogMsg& msg) { Handle(msg); });
}

void CatalogActor::Handle(CatalogMsg& msg) {
  if (auto* r = std::get_if<CatalogRequest>(&msg)) return OnRequest(*r);
  if (auto* b = std::get_if<BeginCheckpoint>(&msg)) return OnBegin(*b);
  if (auto* a = std::get_if<AbortCheckpoint>(&msg)) {
    if (taking_ && taking_->info.id == a->id) Finish(a->reason);
    return;
  }
  if (auto* r = std::get_if<RestoreCheckpoint>(&msg)) return OnRestore(*r);
  if (auto* d = std::get_if<RestoreCallDone>(&msg)) return OnRestoreCallDone(*d);
  if (auto* d = std::get_if<CheckpointDeadline>(&msg)) {
    if (taking_ && taking_->info.id == d->id) {
      Finish(absl::DeadlineExceededError(absl::StrCat("checkpoint ", d->id, " not complete in time")));
    }
    return;
  }
  if (std::holds_alternative<QueryLatestUsable>(msg)) {
    auto latest = store_->LatestUsable();
    if (latest.ok()) {
      Reply(*std::move(latest));
    } else {
      ReplyError(latest.status());
    }
    return;
  }
  if (auto* q = std::get_if<QueryVerified>(&msg)) {
    auto info = store_->Get(q->id);
    absl::Status verified = info.ok() ? store_->Verify(q->id) : info.status();
    if (verified.ok()) {
      Reply(*std::move(info));
    } else {
      ReplyError(verified);
    }
    return;
  }
}

void CatalogActor::OnRequest(CatalogRequest& request) {
  switch (request.message.envelope().getKind()) {
    case proto::MessageKind::CHECKPOINT_CHUNK:
      return OnChunk(request);
    case proto::MessageKind::CHECKPOINT_MANIFEST:
      return OnManifestRequest(request);
    case proto::MessageKind::ADMIN: {  // checkpoint list
      auto list = store_->List();
      if (!list.ok()) return request.responder.Fail(list.status());
      capnp::MallocMessageBuilder b;
      auto reply = cluster::InitBody<proto::admin::AdminReply>(b, proto::MessageKind::ADMIN);
      auto out = reply.initCheckpoints(static_cast<unsigned>(list->size()));
      for (size_t i = 0; i < list->size(); ++i) InfoToProto((*list)[i], out[i]);
      return cluster::ReplyAdmin(b, request.responder);
    }
    default:
      return request.responder.Fail(absl::UnimplementedError("catalog: unexpected message kind"));
  }
}

void CatalogActor::OnChunk(CatalogRequest& request) {
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
    return Finish(stored);
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
  Finish(store_->Commit(info));
}

void CatalogActor::OnManifestRequest(CatalogRequest& request) {
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

void CatalogActor::OnBegin(BeginCheckpoint& begin) {
  if (taking_) {
    on_event_({CatalogEvent::Kind::kFailed, begin.info.id, begin.info.step,
               absl::FailedPreconditionError(absl::StrCat("checkpoint ", taking_->info.id, " is still being taken"))});
    return;
  }
  (void)store_->Abandon(begin.info.id);  // leftovers of an earlier attempt with this id
  Taking taking;
  taking.info = std::move(begin.info);
  taking.info.actors.clear();
  for (const cluster::ActorKey& a : begin.actors) taking.actors[a] = std::nullopt;
  const uint64_t id = taking.info.id;
  taking.deadline = After(ToChrono(options_.checkpoint_timeout), [this, id] { Tell(CheckpointDeadline{id}); });
  taking_ = std::move(taking);
}

void CatalogActor::Finish(absl::Status status) {
  if (!taking_) return;
  CancelTimer(taking_->deadline);
  const uint64_t id = taking_->info.id, step = taking_->info.step;
  if (!status.ok()) {
    SY_LOG(WARNING) << "checkpoint " << id << " abandoned: " << status;
    (void)store_->Abandon(id);
  } else {
    SY_LOG(INFO) << "checkpoint " << id << " committed at step " << step;
  }
  taking_.reset();
  on_event_({status.ok() ? CatalogEvent::Kind::kCommitted : CatalogEvent::Kind::kFailed, id, step, status});
}

void CatalogActor::OnRestore(RestoreCheckpoint& restore) {
  auto fail = [&](absl::Status s) { on_event_({CatalogEvent::Kind::kRestoreFailed, restore.id, 0, std::move(s)}); };
  auto info = store_->Get(restore.id);
  if (!info.ok()) return fail(info.status());
  if (options_.config_hash != 0 && info->config_hash != 0 && info->config_hash != options_.config_hash) {
    return fail(absl::FailedPreconditionError(absl::StrCat("checkpoint ", restore.id, " was taken with config ",
                                                           info->config_hash, ", this cluster runs ", options_.config_hash)));
  }
  std::map<cluster::ActorKey, const ActorStateEntry*> entries;
  for (const ActorStateEntry& e : info->actors) entries[e.actor] = &e;
  // Load and verify everything before sending anything.
  std::vector<std::pair<const ActorStateEntry*, std::string>> states;
  for (const auto& [actor, hosts] : restore.targets) {
    auto it = entries.find(actor);
    if (it == entries.end()) {
      return fail(absl::FailedPreconditionError(absl::StrCat("checkpoint ", restore.id, " lacks actor ", actor.ToString())));
    }
    auto state = store_->LoadActor(restore.id, actor);
    if (!state.ok()) return fail(state.status());
    if (state->size() % 4 != 0) {
      return fail(absl::FailedPreconditionError(absl::StrCat("actor ", actor.ToString(), " state is not whole f32 words")));
    }
    states.emplace_back(it->second, *std::move(state));
  }
  Restoring r;
  r.seq = ++restore_seq_;
  r.id = restore.id;
  r.step = info->step;
  const uint64_t chunk_bytes = std::max<uint64_t>(4, options_.chunk_bytes / 4 * 4);
  const absl::Time deadline = absl::Now() + options_.call_timeout;
  std::vector<std::function<void()>> calls;
  for (const auto& [entry, state] : states) {
    const uint32_t count = static_cast<uint32_t>(std::max<uint64_t>(1, (state.size() + chunk_bytes - 1) / chunk_bytes));
    for (const std::string& host : restore.targets[entry->actor]) {
      for (uint32_t index = 0; index < count; ++index) {
        const uint64_t offset = index * chunk_bytes;
        const absl::string_view bytes = absl::string_view(state).substr(offset, chunk_bytes);
        auto b = std::make_shared<capnp::MallocMessageBuilder>();
        auto req = cluster::InitBody<proto::expert::StateStreamRequest>(*b, proto::MessageKind::STATE_STREAM, restore.epoch);
        entry->actor.ToProto(req.initActor());
        req.setCheckpointId(restore.id);
        auto in = req.initChunkIn();
        in.setVersion(entry->version);
        in.setIndex(index);
        in.setCount(count);
        in.setOffset(offset);
        in.setTotalBytes(state.size());
        in.setChecksum(entry->checksum);
        auto frames = cluster::AttachState(*b, bytes);
        ++r.outstanding;
        calls.push_back([this, b, frames, host, deadline, seq = r.seq]() mutable {
          auto weak = weak_from_this();
          rpc_->CallAsync({host, transport::Route::kConnected}, *b, std::move(frames), deadline,
                          [weak, seq](absl::StatusOr<transport::DecodedMessage> reply) {
                            if (auto self = weak.lock()) self->Tell(RestoreCallDone{seq, reply.status()});
                          });
        });
      }
    }
  }
  if (r.outstanding == 0) {
    on_event_({CatalogEvent::Kind::kRestored, restore.id, info->step, absl::OkStatus()});
    return;
  }
  restoring_ = r;
  SY_LOG(INFO) << "restoring checkpoint " << restore.id << " (step " << info->step << "): " << calls.size() << " chunks";
  for (auto& call : calls) call();
}

void CatalogActor::OnRestoreCallDone(const RestoreCallDone& done) {
  if (!restoring_ || restoring_->seq != done.restore_seq) return;
  if (!done.status.ok() && restoring_->first_error.ok()) restoring_->first_error = done.status;
  if (--restoring_->outstanding > 0) return;
  const Restoring r = *restoring_;
  restoring_.reset();
  if (r.first_error.ok()) {
    on_event_({CatalogEvent::Kind::kRestored, r.id, r.step, absl::OkStatus()});
  } else {
    on_event_({CatalogEvent::Kind::kRestoreFailed, r.id, r.step, r.first_error});
  }
}

}  // namespace sy::coordinator
