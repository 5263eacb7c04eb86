// An actor's serialized state sent in chunks (proto/expert.capnp ChunkIn, carried by
// checkpoint.ChunkRequest to the coordinator and by expert.LiveStateRequest host to
// host): where each chunk starts and ends, what it says about the whole state, and the
// one answer once every chunk was acknowledged. Shared by checkpoint streams and live
// moves. Thread-safe: pure functions; ChunkAcks counts from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/expert.capnp.h"

namespace sy::cluster {

struct StateChunk {
  uint32_t index = 0;
  uint32_t count = 0;
  uint64_t offset = 0;
  absl::string_view bytes;  // into the state
};

// `state` cut into chunks of at most `chunk_bytes` (rounded down to whole floats, at
// least one float); an empty state is one empty chunk.
std::vector<StateChunk> SplitState(absl::string_view state, uint64_t chunk_bytes);

// Fills `out` for chunk `chunk` of a state at `version` of `total_bytes` bytes with `checksum`.
void FillChunkIn(const StateChunk& chunk, uint64_t version, uint64_t total_bytes, uint64_t checksum,
                 proto::expert::ChunkIn::Builder out);

// Calls `done` once: OK after `count` acknowledgements, or with the first failure.
// Copies share the count.
class ChunkAcks {
 public:
  ChunkAcks(uint32_t count, std::function<void(absl::Status)> done);
  void Ack(const absl::Status& status) const;

 private:
  struct Shared {
    std::atomic<uint32_t> remaining;
    std::atomic<bool> failed{false};
    std::function<void(absl::Status)> done;
  };
  std::shared_ptr<Shared> shared_;
};

}  // namespace sy::cluster
