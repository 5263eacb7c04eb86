// The states a host expects from live moves (proto/expert.capnp LiveStateRequest), and
// their chunks checked at the door: a chunk is taken only for an actor the placement
// told the host to expect, from the host it comes from, at the move's version; the
// chunks must follow each other, announce the actor's real state size and, whole,
// match the checksum (RestoreChunks). A refused chunk changes nothing; the expectation
// ends when the state is installed or the placement drops it. Thread-safe: chunks
// arrive on any thread while the placement actor sets the expectations.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/transport/message.h"
#include "proto/expert.capnp.h"
#include "services/cluster/actor_key.h"
#include "services/expert_host/restore_chunks.h"

namespace sy::expert_host {

class LiveArrivals {
 public:
  LiveArrivals(size_t max_concurrent, absl::Duration idle);

  // `key`'s state at `version` comes from host `from`.
  void Expect(const cluster::ActorKey& key, const std::string& from, uint64_t version);
  // `key` is no longer expected (installed, or no longer placed here).
  void Forget(const cluster::ActorKey& key);
  // Nothing is expected any more (a table without live moves).
  void ForgetAll();

  // Adds chunk `chunk` (bytes `frame`) of `key`'s state, a state of `state_bytes` bytes,
  // sent by `sender`: nullopt while more chunks are expected, the whole state once the
  // last one is in and verifies. NotFound when `key` is not expected, PermissionDenied
  // when `sender` is not the host it comes from, InvalidArgument for another version or
  // a chunk out of place, ResourceExhausted / DataLoss as RestoreChunks::Add.
  absl::StatusOr<std::optional<std::string>> Add(const cluster::ActorKey& key, const std::string& sender,
                                                 proto::expert::ChunkIn::Reader chunk, const transport::Frame& frame,
                                                 uint64_t state_bytes);

 private:
  struct Expected {
    std::string from;
    uint64_t version = 0;
  };
  mutable absl::Mutex mu_;
  std::map<cluster::ActorKey, Expected> expected_ ABSL_GUARDED_BY(mu_);
  RestoreChunks chunks_;
};

}  // namespace sy::expert_host
