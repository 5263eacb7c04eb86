// Restored states assembled chunk by chunk (see restore_chunks.h).
#include "services/expert_host/restore_chunks.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/fnv1a.h"

namespace sy::expert_host {

absl::StatusOr<std::optional<std::string>> RestoreChunks::Add(const cluster::ActorKey& key,
                                                              proto::expert::ChunkIn::Reader chunk,
                                                              const transport::Frame& frame, uint64_t checkpoint_id) {
  std::string whole;
  {
    absl::MutexLock lock(&mu_);
    std::string& bytes = partial_[key];
    if (chunk.getIndex() == 0) bytes.clear();
    if (chunk.getOffset() != bytes.size() || bytes.size() + frame.size() > chunk.getTotalBytes()) {
      const size_t received = bytes.size();
      partial_.erase(key);
      return absl::InvalidArgumentError(absl::StrCat("state chunk ", chunk.getIndex(), " of ", key.ToString(),
                                                     " at offset ", chunk.getOffset(), " does not follow the ",
                                                     received, " bytes received"));
    }
    bytes.append(reinterpret_cast<const char*>(frame.data()), frame.size());
    if (chunk.getIndex() + 1 < chunk.getCount()) return std::nullopt;
    whole = std::move(bytes);
    partial_.erase(key);
  }
  if (whole.size() != chunk.getTotalBytes() || ChecksumOf(whole) != chunk.getChecksum()) {
    return absl::DataLossError(absl::StrCat("restored state of ", key.ToString(), " (checkpoint ", checkpoint_id,
                                            ") does not verify"));
  }
  return whole;
}

}  // namespace sy::expert_host
