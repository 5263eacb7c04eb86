// State chunks and their acknowledgements (see state_chunks.h).
#include "services/cluster/state_chunks.h"

#include <algorithm>
#include <utility>

namespace sy::cluster {

std::vector<StateChunk> SplitState(absl::string_view state, uint64_t chunk_bytes) {
  const uint64_t size = std::max<uint64_t>(4, chunk_bytes / 4 * 4);
  const uint32_t count = static_cast<uint32_t>(std::max<uint64_t>(1, (state.size() + size - 1) / size));
  std::vector<StateChunk> chunks;
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t offset = static_cast<uint64_t>(i) * size;
    chunks.push_back({i, count, offset, state.substr(offset, size)});
  }
  return chunks;
}

void FillChunkIn(const StateChunk& chunk, uint64_t version, uint64_t total_bytes, uint64_t checksum,
                 proto::expert::ChunkIn::Builder out) {
  out.setVersion(version);
  out.setIndex(chunk.index);
  out.setCount(chunk.count);
  out.setOffset(chunk.offset);
  out.setTotalBytes(total_bytes);
  out.setChecksum(checksum);
}

ChunkAcks::ChunkAcks(uint32_t count, std::function<void(absl::Status)> done) : shared_(std::make_shared<Shared>()) {
  shared_->remaining = count;
  shared_->done = std::move(done);
}

void ChunkAcks::Ack(const absl::Status& status) const {
  if (!status.ok()) {
    if (!shared_->failed.exchange(true)) shared_->done(status);
    return;
  }
  if (--shared_->remaining == 0 && !shared_->failed.load()) shared_->done(absl::OkStatus());
}

}  // namespace sy::cluster
