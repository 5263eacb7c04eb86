// The messages of a ParamActor (services/expert_host/param_actor.h): the requests
// that HostService checked at the door, with their transport Responder, and the
// step, checkpoint and placement messages of the host's own actors. Plain values;
// a request holds its share of the host's RequestBudget until it is destroyed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/actor/request_budget.h"
#include "common/transport/rpc.h"
#include "proto/envelope.capnp.h"
#include "services/cluster/step_wire.h"

namespace sy::expert_host {

// What a forward or backward of one bucket carries besides its rows: which
// micro-batch of which step, the version the actor must be at, the bucket's size
// and wire dtype, and how and until when to answer.
struct BucketCall {
  uint64_t step = 0;         // unused by evaluation forwards
  uint32_t micro_batch = 0;
  uint64_t version = 0;      // training: step - 1; evaluation: the actor's version
  int rows = 0;
  proto::DType dtype = proto::DType::F32;
  absl::Time deadline;
  transport::Responder responder;
  actor::RequestBudget::Ticket ticket;
};
// Forward of one bucket.
struct ForwardMsg : BucketCall {
  bool training = false;
  uint64_t seed = 0;
  std::vector<float> in;  // (rows, C)
};
// Backward of the bucket of the earlier training forward of (step, micro_batch).
struct BackwardMsg : BucketCall {
  std::vector<float> dout;  // (rows, C)
};
// A dense shard's gradient of the micro-batches `micro_batches` of `step` (one, or a
// node of the step's tree pre-summed by the trainer; already scaled by 1/M).
struct PushMsg {
  uint64_t step = 0;
  cluster::MicroBatchSpan micro_batches;
  std::vector<float> grad;
  bool bf16 = false;  // it came in bf16 (--dense_wire_dtype=bf16)
  absl::Time deadline;
  transport::Responder responder;
  actor::RequestBudget::Ticket ticket;
};
// The weights once the actor reached `version`.
struct PullMsg {
  uint64_t version = 0;
  bool expert = false;  // echo the request's target in the reply
  proto::DType dtype = proto::DType::F32;  // of the reply's values
  absl::Time deadline;
  transport::Responder responder;
  actor::RequestBudget::Ticket ticket;
};
// Closes the open step `step`; `done` gets the per-segment sums of squares.
struct FinalizeMsg {
  uint64_t step = 0;
  std::function<void(absl::StatusOr<std::vector<double>>)> done;
};
struct ApplyMsg {
  uint64_t step = 0;
  float clip_scale = 1.0f;
  float lr = 0.0f;
  std::function<void(absl::Status)> done;
};
// One actor's status as the step protocol reports it.
using cluster::ActorStatusValue;
struct StatusMsg {
  std::function<void(absl::StatusOr<ActorStatusValue>)> done;
};
// The whole state (ParamState::SaveState) once the actor is at `version`, taken
// before any later step applies (checkpoints); FailedPrecondition when the actor
// is already past it.
struct SnapshotMsg {
  uint64_t version = 0;
  absl::Time deadline;
  std::function<void(absl::StatusOr<std::string>)> done;
};
// Installs checkpointed state at `version` (restore): the open step is dropped, parked
// requests fail with Aborted, and a restoring actor starts serving.
struct RestoreMsg {
  uint64_t version = 0;
  std::string bytes;
  std::function<void(absl::Status)> done;
};
// A live move brings this (restoring) actor's state at `version` from another host:
// until it is installed, requests wait (parked) instead of being refused, and the
// step's finalize and apply wait with them.
struct ExpectLiveMsg {
  uint64_t version = 0;
};
// Installs state moved here live at `version` (LiveStateRequest): unlike a restore it
// rolls nothing back; the waiting requests are served once it is in.
struct LiveInstallMsg {
  uint64_t version = 0;
  std::string bytes;
  std::function<void(absl::Status)> done;
};
// The actor is no longer placed on this host: parked requests fail with `why` (NotFound).
struct RemovedMsg {
  std::string why;
};
// Sends the actor's own contributions of `step` (their micro-batches ascending, one
// gradient of the actor's size each) to replica host `peer`.
// `dtype`: what they came in as (bf16 values travel as bf16, without loss).
using ReplicaSender = std::function<void(const std::string& peer, uint64_t step,
                                         const std::vector<cluster::MicroBatchSpan>& micro_batches,
                                         const std::vector<std::vector<float>>& grads, proto::DType dtype)>;
// The other hosts holding this actor (empty: not replicated) and how to reach them,
// from the step after `after_version` on (a live move's boundary; 0: at once).
struct ReplicasMsg {
  std::vector<std::string> peers;
  ReplicaSender send;
  uint64_t after_version = 0;
};
// A peer replica's contributions to the open step `step` (its micro-batches).
struct PeerGradientsMsg {
  uint64_t step = 0;
  std::string sender;
  std::vector<cluster::MicroBatchSpan> micro_batches;  // ascending, one per gradient
  std::vector<std::vector<float>> grads;
  bool bf16 = false;  // they came in bf16
  absl::Time deadline;
  transport::Responder responder;
  actor::RequestBudget::Ticket ticket;
};
// The actor leaves this host (or, keep, gains a replica elsewhere) after step
// `version`: once it applied that step, `done` gets its whole state; requests parked for
// later steps are refused as of placement `epoch` (stale epoch, no rollback follows:
// they are sent again under the new table); a kept actor serves on with the replicas
// (new replica peers come with the table, after the same step), a moved one refuses
// everything later. FailedPrecondition when it is already past `version`.
struct MoveOutMsg {
  uint64_t version = 0;
  uint64_t epoch = 0;
  bool keep = false;
  std::function<void(absl::StatusOr<std::string>)> done;
};
// The requests: the messages that carry a transport Responder.
template <class M>
constexpr bool kIsParamActorRequest = std::is_same_v<M, ForwardMsg> || std::is_same_v<M, BackwardMsg> ||
                                      std::is_same_v<M, PushMsg> || std::is_same_v<M, PullMsg> ||
                                      std::is_same_v<M, PeerGradientsMsg>;
// A failover (a dead host's actors live on elsewhere): the open step's contributions,
// finalized or not, and its saved activations are dropped; the trainers redo the step.
struct DropStepMsg {};
using ParamActorMsg = std::variant<ForwardMsg, BackwardMsg, PushMsg, PullMsg, FinalizeMsg, ApplyMsg, StatusMsg,
                                   SnapshotMsg, RestoreMsg, RemovedMsg, ReplicasMsg, PeerGradientsMsg, ExpectLiveMsg,
                                   LiveInstallMsg, MoveOutMsg, DropStepMsg>;

}  // namespace sy::expert_host
