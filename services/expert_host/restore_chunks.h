// The chunks of restored actor states (StateStreamRequest.chunkIn) collected until
// each state is whole: a chunk must follow the bytes received so far for its actor
// (chunk 0 starts over), the announced total must be the actor's real state size
// (what the host buffers is bounded by the model, not by a claim), at most
// `max_concurrent` states are assembled at once (one idle for `idle` is dropped to
// make room), and the whole state must have the announced size and checksum. Thread-safe: chunks arrive on any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/transport/message.h"
#include "proto/expert.capnp.h"
#include "services/cluster/actor_key.h"
#include "services/expert_host/host_limits.h"

namespace sy::expert_host {

class RestoreChunks {
 public:
  explicit RestoreChunks(size_t max_concurrent = HostLimits().max_concurrent_restores,
                         absl::Duration idle = HostLimits().restore_idle);

  // Adds `frame`, chunk `chunk` of `key`'s state restored from checkpoint `checkpoint_id`,
  // a state of `state_bytes` bytes: nullopt while more chunks are expected, the whole
  // state once the last one is in and verifies. InvalidArgument when the announced total
  // is not `state_bytes` or the chunk does not follow (the partial state is dropped);
  // ResourceExhausted when chunk 0 would start a state beyond `max_concurrent`; DataLoss
  // when the whole state does not verify.
  absl::StatusOr<std::optional<std::string>> Add(const cluster::ActorKey& key, proto::expert::ChunkIn::Reader chunk,
                                                 const transport::Frame& frame, uint64_t checkpoint_id,
                                                 uint64_t state_bytes);
  // States being assembled now.
  size_t in_progress() const;

 private:
  struct Partial {
    std::string bytes;  // received so far
    absl::Time last_chunk;
  };
  // Drops the partial states idle since before `now` - idle_.
  void DropIdle(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_concurrent_;
  const absl::Duration idle_;
  mutable absl::Mutex mu_;
  std::map<cluster::ActorKey, Partial> partial_ ABSL_GUARDED_BY(mu_);  // by actor
};

}  // namespace sy::expert_host
