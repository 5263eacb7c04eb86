// The chunks of restored actor states (StateStreamRequest.chunkIn) collected until
// each state is whole: a chunk must follow the bytes received so far for its actor
// (chunk 0 starts over), and the whole state must have the announced size and
// checksum. Thread-safe: chunks arrive on any thread.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/transport/message.h"
#include "proto/expert.capnp.h"
#include "services/cluster/actor_key.h"

namespace sy::expert_host {

class RestoreChunks {
 public:
  // Adds `frame`, chunk `chunk` of `key`'s state restored from checkpoint `checkpoint_id`:
  // nullopt while more chunks are expected, the whole state once the last one is in and
  // verifies. InvalidArgument when the chunk does not follow (the partial state is
  // dropped); DataLoss when the whole state does not verify.
  absl::StatusOr<std::optional<std::string>> Add(const cluster::ActorKey& key, proto::expert::ChunkIn::Reader chunk,
                                                 const transport::Frame& frame, uint64_t checkpoint_id);

 private:
  absl::Mutex mu_;
  std::map<cluster::ActorKey, std::string> partial_ ABSL_GUARDED_BY(mu_);  // bytes so far, by actor
};

}  // namespace sy::expert_host
