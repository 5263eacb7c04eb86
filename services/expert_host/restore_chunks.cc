// Restored states assembled chunk by chunk (see restore_chunks.h).
#include "services/expert_host/restore_chunks.h"

#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/fnv1a.h"

namespace sy::expert_host {

RestoreChunks::RestoreChunks(size_t max_concurrent, absl::Duration idle) : max_concurrent_(max_concurrent), idle_(idle) {}

void RestoreChunks::DropIdle(absl::Time now) {
  for (auto it = partial_.begin(); it != partial_.end();) {
    it = it->second.last_chunk < now - idle_ ? partial_.erase(it) : std::next(it);
  }
}

absl::StatusOr<std::optional<std::string>> RestoreChunks::Add(const cluster::ActorKey& key,
                                                              proto::expert::ChunkIn::Reader chunk,
                                                              const transport::Frame& frame, uint64_t checkpoint_id,
                                                              uint64_t state_bytes) {
  std::string whole;
  {
    absl::MutexLock lock(&mu_);
    if (chunk.getTotalBytes() != state_bytes) {
      partial_.erase(key);
      return absl::InvalidArgumentError(absl::StrCat("state chunk of ", key.ToString(), " announces ",
                                                     chunk.getTotalBytes(), " bytes; its state has ", state_bytes));
    }
    const absl::Time now = absl::Now();
    auto it = partial_.find(key);
    if (it == partial_.end()) {
      DropIdle(now);
      if (partial_.size() >= max_concurrent_) {
        return absl::ResourceExhaustedError(absl::StrCat("restore of ", key.ToString(), " refused: ", partial_.size(),
                                                         " restores are in progress (at most ", max_concurrent_, ")"));
      }
      it = partial_.emplace(key, Partial()).first;
    }
    it->second.last_chunk = now;
    std::string& bytes = it->second.bytes;
    if (chunk.getIndex() == 0) bytes.clear();
    if (chunk.getOffset() != bytes.size() || bytes.size() + frame.size() > state_bytes) {
      const size_t received = bytes.size();
      partial_.erase(it);
      return absl::InvalidArgumentError(absl::StrCat("state chunk ", chunk.getIndex(), " of ", key.ToString(),
                                                     " at offset ", chunk.getOffset(), " does not follow the ",
                                                     received, " bytes received"));
    }
    bytes.append(reinterpret_cast<const char*>(frame.data()), frame.size());
    if (chunk.getIndex() + 1 < chunk.getCount()) return std::nullopt;
    whole = std::move(bytes);
    partial_.erase(it);
  }
  if (whole.size() != chunk.getTotalBytes() || ChecksumOf(whole) != chunk.getChecksum()) {
    return absl::DataLossError(absl::StrCat("restored state of ", key.ToString(), " (checkpoint ", checkpoint_id,
                                            ") does not verify"));
  }
  return whole;
}

size_t RestoreChunks::in_progress() const {
  absl::MutexLock lock(&mu_);
  return partial_.size();
}

}  // namespace sy::expert_host
