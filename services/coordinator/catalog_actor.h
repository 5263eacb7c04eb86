// CatalogActor: the coordinator's checkpoint side, in front of the RocksDB
// CheckpointStore. It owns the checkpoint being taken (which chunks arrived), stores
// the hosts' CheckpointChunk requests, commits the manifest once every actor's last
// chunk is in, abandons a checkpoint that fails or times out, answers manifest
// queries and `checkpoint list`, and restores a checkpoint by streaming every actor's
// verified state to the hosts that will serve it (StateStream chunkIn, purpose
// checkpoint, checkpointId = the restored id). Outcomes go to `on_event`.
//
// Its whole interface is CatalogMsg. Thread-safe like every actor (Tell/Ask from
// any thread).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/actor/actor.h"
#include "common/transport/rpc.h"
#include "services/coordinator/checkpoint_store.h"
#include "services/coordinator/coordinator_options.h"

namespace sy::coordinator {

// A checkpoint chunk, a manifest query, or an admin `checkpoint list`, from the wire.
struct CatalogRequest {
  transport::DecodedMessage message;
  transport::Responder responder;
};
// Start taking checkpoint `info.id` of `actors` (info.actors is filled as chunks arrive).
struct BeginCheckpoint {
  CheckpointInfo info;
  std::vector<cluster::ActorKey> actors;
};
// Give up on the checkpoint being taken (a host could not stream).
struct AbortCheckpoint {
  uint64_t id = 0;
  absl::Status reason;
};
// Stream checkpoint `id` to the hosts in `targets` (every actor -> its replicas).
struct RestoreCheckpoint {
  uint64_t id = 0;
  std::map<cluster::ActorKey, std::vector<std::string>> targets;
  uint64_t epoch = 0;
};
// Internal: one restore chunk call finished.
struct RestoreCallDone {
  uint64_t restore_seq = 0;
  absl::Status status;
};
// Internal: the checkpoint-taking deadline passed.
struct CheckpointDeadline {
  uint64_t id = 0;
};
// Ask<CheckpointInfo>: the newest usable checkpoint (NotFound when none).
struct QueryLatestUsable {};
// Ask<CheckpointInfo>: checkpoint `id` if it verifies.
struct QueryVerified {
  uint64_t id = 0;
};

using CatalogMsg = std::variant<CatalogRequest, BeginCheckpoint, AbortCheckpoint, RestoreCheckpoint,
                                RestoreCallDone, CheckpointDeadline, QueryLatestUsable, QueryVerified>;

struct CatalogEvent {
  enum class Kind { kCommitted, kFailed, kRestored, kRestoreFailed };
  Kind kind = Kind::kCommitted;
  uint64_t id = 0;
  uint64_t step = 0;
  absl::Status status;
};

class CatalogActor : public actor::Actor<CatalogMsg> {
 public:
  // `rpc` (for restore calls) and `store` must outlive the actor.
  CatalogActor(actor::Executor& executor, CheckpointStore* store, transport::RpcNode* rpc,
               const CoordinatorOptions& options, std::function<void(CatalogEvent)> on_event,
               metrics::Registry* registry = nullptr);

 private:
  struct Taking {
    CheckpointInfo info;
    std::map<cluster::ActorKey, std::optional<ActorStateEntry>> actors;  // set once complete
    std::map<cluster::ActorKey, std::set<uint32_t>> chunks_received;  // indices stored
    actor::TimerId deadline = 0;
  };
  struct Restoring {
    uint64_t seq = 0;
    uint64_t id = 0;
    uint64_t step = 0;
    size_t outstanding = 0;
    absl::Status first_error;
  };

  void Handle(CatalogMsg& msg);
  void OnRequest(CatalogRequest& request);
  void OnChunk(CatalogRequest& request);
  void OnManifestRequest(CatalogRequest& request);
  void OnBegin(BeginCheckpoint& begin);
  void Finish(absl::Status status);
  void OnRestore(RestoreCheckpoint& restore);
  void OnRestoreCallDone(const RestoreCallDone& done);

  CheckpointStore* store_;
  transport::RpcNode* rpc_;
  CoordinatorOptions options_;
  std::function<void(CatalogEvent)> on_event_;
  std::optional<Taking> taking_;
  std::optional<Restoring> restoring_;
  uint64_t restore_seq_ = 0;
};

}  // namespace sy::coordinator
