// CheckpointActor: the coordinator's checkpoints, each tracked here and nowhere else,
// in front of the RocksDB CheckpointStore. It owns a checkpoint's whole life:
//   begin    every --checkpoint_every steps (asked of the hosts ahead of the step they
//            are at) or on an admin `checkpoint now`: each actor's host is asked to
//            stream the actor's state to the coordinator;
//   stream-in the hosts' CheckpointChunk requests are stored as they arrive, each only
//            from the host asked for its actor, within the size its first chunk
//            declared, once per index (anything else is refused, counted in
//            sy_refused_total{reason=permission|chunk}, and changes nothing);
//   commit   the manifest is written once every actor's last chunk is in;
//   abandon  a checkpoint that fails, times out, or that the cluster declares void
//            (a recovery began, or every trainer finished before its step);
//   restore  every actor's verified state is streamed to the hosts that will serve it
//            (StateStream chunkIn, purpose checkpoint, checkpointId = the restored id).
// It also answers manifest queries and `checkpoint list`.
//
// The ClusterActor tells it the cluster's state with ClusterProgress after every change,
// and it reports back through `on_event`: every CheckpointEvent carries a
// CheckpointSnapshot, the copy the cluster reports and plans moves with. A checkpoint
// counts as under way until the cluster has seen its outcome (ClusterProgress::
// outcome_seen): only then may the next one begin, so the cluster acts on a commit (a
// rebalance through it) before another checkpoint starts.
//
// With a Registry it exports sy_coordinator_checkpoints_total{result=committed|failed}.
// Its whole interface is CheckpointMsg. Thread-safe like every actor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "common/actor/actor.h"
#include "common/actor/request_budget.h"
#include "common/transport/rpc.h"
#include "proto/expert.capnp.h"
#include "services/coordinator/checkpoint_store.h"
#include "services/coordinator/coordinator_options.h"

namespace sy::coordinator {

// A checkpoint chunk, a manifest query, or an admin `checkpoint list`, from the wire.
struct CheckpointRequest {
  transport::DecodedMessage message;
  transport::Responder responder;
  actor::RequestBudget::Ticket admission;  // the door's share of its request budget (optional)
};
// The cluster's state as the checkpoints need it (sent by the ClusterActor when it changed).
struct ClusterProgress {
  uint64_t step = 0;    // the step the hosts' actors reached (or were restored to)
  uint64_t epoch = 0;   // placement epoch
  bool ready = false;   // actors are placed and no recovery or restore runs: checkpoints may be taken
  std::map<cluster::ActorKey, transport::Address> stream_from;  // the host that streams each actor's state
  std::optional<uint64_t> finished_at_step;  // every trainer finished there: no checkpoint beyond it
  uint64_t outcome_seen = 0;  // id of the newest checkpoint whose outcome the cluster has acted on
  // The cluster moved on (a step further, an outcome acted on, a restore done, training
  // resumed): the next automatic checkpoint begins now if none is under way.
  bool checkpoint_due = false;
  // Non-empty: the checkpoint being taken is void (a recovery or restore began) and is abandoned.
  std::string abandon_reason;
  bool operator==(const ClusterProgress& o) const;
};
// An admin `checkpoint now` at `step` (the cluster checked that it may be taken).
struct TakeCheckpointNow {
  uint64_t step = 0;
  transport::Responder responder;
};
// Stream checkpoint `id` to the hosts in `targets` (every actor -> its replicas' peers).
struct RestoreCheckpoint {
  uint64_t id = 0;
  std::map<cluster::ActorKey, std::vector<std::string>> targets;
  uint64_t epoch = 0;
  uint64_t generation = 0;  // the asker's count of restores begun, echoed in the outcome's event
};
// Internal: a host could not stream an actor of checkpoint `id`.
struct StreamFailed {
  uint64_t id = 0;
  absl::Status status;
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

using CheckpointMsg =
    std::variant<CheckpointRequest, ClusterProgress, TakeCheckpointNow, RestoreCheckpoint, StreamFailed,
                 RestoreCallDone, CheckpointDeadline, QueryLatestUsable, QueryVerified>;

// What the cluster reports about checkpoints (a copy made by the CheckpointActor).
struct CheckpointSnapshot {
  uint64_t latest_id = 0;         // newest committed checkpoint (0: none)
  uint64_t latest_step = 0;       // its step
  uint64_t in_progress_id = 0;    // the checkpoint being taken (0: none)
  uint64_t in_progress_step = 0;  // its step
  uint32_t committed = 0;         // checkpoints committed since this coordinator started
};

struct CheckpointEvent {
  enum class Kind { kStarted, kCommitted, kFailed, kRestored, kRestoreFailed };
  Kind kind = Kind::kStarted;
  uint64_t id = 0;
  uint64_t step = 0;
  absl::Status status;
  // kFailed: the database refused a write (the cluster reports itself degraded).
  bool storage_failed = false;
  CheckpointSnapshot snapshot;  // after the event
  // kRestored, kRestoreFailed: RestoreCheckpoint.generation of the restore that ended.
  uint64_t restore_generation = 0;
};

class CheckpointActor : public actor::Actor<CheckpointMsg> {
 public:
  // Everything passed must outlive the actor. `endpoint`: where hosts send chunks.
  CheckpointActor(actor::Executor& executor, const CoordinatorOptions& options, std::string endpoint,
                  CheckpointStore* store, transport::RpcNode* rpc, std::function<void(CheckpointEvent)> on_event,
                  metrics::Registry* registry = nullptr);

  // Loads the catalog (the newest committed checkpoint, the next id). Call once,
  // before messages arrive; the snapshot is the cluster's first.
  absl::StatusOr<CheckpointSnapshot> Start();

 private:
  // What an actor's first chunk declared, and the indices stored since.
  struct ActorChunks {
    uint32_t count = 0;
    uint64_t total_bytes = 0;
    uint64_t checksum = 0;
    std::set<uint32_t> received;
  };
  struct Taking {
    CheckpointInfo info;
    std::map<cluster::ActorKey, std::optional<ActorStateEntry>> actors;  // set once complete
    std::map<cluster::ActorKey, std::string> asked;  // the node asked to stream each actor
    std::map<cluster::ActorKey, ActorChunks> chunks;  // from each actor's first chunk on
    actor::TimerId deadline = 0;
  };
  struct Restoring {
    uint64_t seq = 0;
    uint64_t id = 0;
    uint64_t step = 0;
    uint64_t generation = 0;
    size_t outstanding = 0;
    absl::Status first_error;
  };

  void Handle(CheckpointMsg& msg);
  void OnRequest(CheckpointRequest& request);
  void OnProgress(ClusterProgress& progress);
  void OnTakeNow(TakeCheckpointNow& take);
  void OnStreamFailed(const StreamFailed& failed);
  void OnDeadline(const CheckpointDeadline& deadline);
  void OnQueryLatestUsable();
  void OnQueryVerified(const QueryVerified& query);
  void OnCheckpointList(CheckpointRequest& request);
  void OnManifestRequest(CheckpointRequest& request);

  // The checkpoint under way: the one being taken, or the last one while the cluster
  // has not seen its outcome; 0 when none.
  uint64_t UnderWay() const;
  // With --checkpoint_every, begins the next multiple of it (see the .cc) when the
  // cluster is ready and no checkpoint is under way.
  void MaybeAutoCheckpoint();
  // Begins checkpoint next_id_ at `step`: asks every actor's host to stream it. Returns its id.
  uint64_t Begin(uint64_t step);
  // A chunk arrived (checkpoint_intake.cc); commits once every actor is complete.
  void OnChunk(CheckpointRequest& request);
  // OK when `sender` may add this chunk of `actor` to the checkpoint being taken (see the
  // class comment); the refusal otherwise, counted.
  absl::Status CheckChunk(const std::string& sender, const cluster::ActorKey& actor,
                          proto::expert::ChunkIn::Reader chunk, size_t bytes);
  // Ends the checkpoint being taken: committed when `status` is OK, else abandoned;
  // `storage_failed`: the failure is the database's (a write it refused).
  void Finish(absl::Status status, bool storage_failed = false);
  void OnRestore(RestoreCheckpoint& restore);  // checkpoint_restore.cc
  void OnRestoreCallDone(const RestoreCallDone& done);
  // Reports a restore's outcome; after a successful one the automatic checkpoints
  // continue from its step.
  void RestoreEnded(uint64_t id, uint64_t step, uint64_t generation, absl::Status status);
  CheckpointSnapshot Snapshot() const;
  void Emit(CheckpointEvent::Kind kind, uint64_t id, uint64_t step, absl::Status status, bool storage_failed = false);

  CoordinatorOptions options_;
  std::string endpoint_;
  CheckpointStore* store_;
  transport::RpcNode* rpc_;
  std::function<void(CheckpointEvent)> on_event_;
  metrics::Registry* registry_;  // optional: refusals
  metrics::Counter* committed_metric_ = nullptr;
  metrics::Counter* failed_metric_ = nullptr;

  ClusterProgress cluster_;            // the cluster's latest progress
  std::optional<Taking> taking_;
  uint64_t next_id_ = 1;
  uint64_t last_finished_id_ = 0;      // the newest checkpoint that committed or failed
  uint64_t latest_id_ = 0;             // newest committed
  uint64_t latest_step_ = 0;
  uint32_t committed_ = 0;
  uint64_t auto_target_ = 0;           // step of the last automatic checkpoint asked for
  std::optional<Restoring> restoring_;
  uint64_t restore_seq_ = 0;
};

}  // namespace sy::coordinator
