// Restoring a checkpoint: every actor's state is loaded and verified, then streamed
// in chunks to each host that will serve it (see checkpoint_actor.h).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "services/coordinator/checkpoint_actor.h"

namespace sy::coordinator {

void CheckpointActor::OnRestore(RestoreCheckpoint& restore) {
  auto fail = [&](absl::Status s) { RestoreEnded(restore.id, 0, restore.generation, std::move(s)); };
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
  r.generation = restore.generation;
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
  if (r.outstanding == 0) return RestoreEnded(restore.id, info->step, restore.generation, absl::OkStatus());
  restoring_ = r;
  SY_LOG(INFO) << "restoring checkpoint " << restore.id << " (step " << info->step << "): " << calls.size() << " chunks";
  for (auto& call : calls) call();
}

void CheckpointActor::OnRestoreCallDone(const RestoreCallDone& done) {
  if (!restoring_ || restoring_->seq != done.restore_seq) return;
  if (!done.status.ok() && restoring_->first_error.ok()) restoring_->first_error = done.status;
  if (--restoring_->outstanding > 0) return;
  const Restoring r = *restoring_;
  restoring_.reset();
  RestoreEnded(r.id, r.step, r.generation, r.first_error);
}

void CheckpointActor::RestoreEnded(uint64_t id, uint64_t step, uint64_t generation, absl::Status status) {
  CheckpointEvent event{status.ok() ? CheckpointEvent::Kind::kRestored : CheckpointEvent::Kind::kRestoreFailed,
                        id, step, std::move(status), false, {}, generation};
  if (event.status.ok()) auto_target_ = step;  // the replay passes the later boundaries again
  event.snapshot = Snapshot();
  on_event_(std::move(event));
}

}  // namespace sy::coordinator
