// An expert host's request handling: one ParamActor per expert and per dense shard
// the host holds (initially the static share, with weights identical to the
// in-process model's), the StepActor, and the PlacementActor, behind one entry point
// for RpcNode requests. A request passes the door (RequestDoor: sizes, shapes, ids,
// steps, epochs) and the lookup of the actor that serves it (HeldActors: NotFound
// when none here does) before that actor sees it; a refusal gets an error reply and
// changes nothing. With a coordinator, its tables add actors (they wait for a
// checkpoint restore, refused with Unavailable until then, and the step protocol with
// them) or remove some (NotFound from then on), and requests stamped with a placement
// epoch older than the accepted table are refused (Aborted, naming the current
// epoch). Replicated actors exchange their gradient contributions host to host
// (ReplicaLinks). Metrics: sy_host_requests_total{kind}, sy_host_request_bytes_total,
// sy_host_errors_total{code} (+ the actors').
// Thread-safe: Handle may run on any thread; it only reads immutable parts, looks
// actors up under HeldActors' lock and Tells actors.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/actor/request_budget.h"
#include "common/actor/runtime.h"
#include "common/metrics/registry.h"
#include "common/transport/rpc.h"
#include "gpu/backend.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/coordinator_link.h"
#include "services/expert_host/actor_factory.h"
#include "services/expert_host/held_actors.h"
#include "services/expert_host/host_config.h"
#include "services/expert_host/model_actors.h"
#include "services/expert_host/placement_actor.h"
#include "services/expert_host/replica_links.h"
#include "services/expert_host/request_door.h"
#include "services/expert_host/live_arrivals.h"
#include "services/expert_host/restore_chunks.h"
#include "services/expert_host/step_actor.h"

namespace sy::expert_host {

class HostService {
 public:
  // `backend` and `registry` must outlive the service. InvalidArgument for a bad model
  // or host index.
  static absl::StatusOr<std::unique_ptr<HostService>> Create(const HostConfig& config, gpu::Backend* backend,
                                                              metrics::Registry* registry);
  ~HostService();

  void Handle(transport::DecodedMessage request, transport::Responder responder);
  size_t num_experts() const { return held_.num_experts(); }
  size_t num_shards() const { return held_.num_shards(); }
  // Actors placed here at runtime whose restore has not landed yet.
  size_t num_awaiting_restore() const { return held_.num_awaiting_restore(); }
  // The actors this host holds now (coordinator keys, in key order).
  std::vector<cluster::ActorKey> held_actors() const { return held_.Keys(); }
  uint64_t step_timeouts() const { return step_->timeouts(); }
  // The version this host's actors applied (heartbeats report it: never a step a
  // request merely named).
  uint64_t applied_version() const { return step_->applied_version(); }
  // The coordinator declared this host failed (its link was told so) at placement
  // `epoch`: every actor is dropped (their waiting requests fail NotFound), so nothing
  // of the old epoch is served or applied; the host then registers as a new one.
  void Fence(uint64_t epoch);
  // Where checkpoint state is streamed (null: no coordinator). Must outlive its use;
  // set it to null before destroying the link.
  void set_coordinator_link(cluster::CoordinatorLink* link);
  // Placement epoch of the last coordinator table this host accepted (0: none).
  uint64_t placement_epoch() const { return held_.epoch(); }
  // The largest frame a legitimate peer sends this host (a bucket, a gradient, a restore
  // chunk of the largest actor), plus headroom for the envelope: the transport's
  // ZMQ_MAXMSGSIZE.
  int64_t LargestRequestFrame() const;
  // Requests now held by the actors (in mailboxes or parked), and their bytes.
  size_t requests_held() const { return budget_.requests(); }
  size_t bytes_held() const { return budget_.bytes(); }
  // The node this host serves on, also used to send replica gradients to the other
  // replicas' hosts (null: none). Must outlive its use; set it to null before closing it.
  void set_rpc(transport::RpcNode* rpc) { replicas_.set_rpc(rpc); }

 private:
  HostService(const HostConfig& config, gpu::Backend* backend, metrics::Registry* registry);
  absl::Status Dispatch(proto::MessageKind kind, const transport::DecodedMessage& request,
                        transport::Responder responder);
  absl::Status HandleForward(const transport::DecodedMessage& request, transport::Responder responder);
  absl::Status HandleBackward(const transport::DecodedMessage& request, transport::Responder responder);
  absl::Status HandlePush(const transport::DecodedMessage& request, transport::Responder responder);
  absl::Status HandlePull(const transport::DecodedMessage& request, transport::Responder responder);
  absl::Status HandleStep(const transport::DecodedMessage& request, transport::Responder responder);
  absl::Status HandlePlacement(const transport::DecodedMessage& request, transport::Responder responder);
  absl::Status HandleReplicaGradients(const transport::DecodedMessage& request,
                                      transport::Responder responder);
  // Checkpoint stream out / restore chunk in (host_state_stream.cc). A completed restore
  // to step S rolls the step protocol back to S and lets a restoring actor serve.
  absl::Status HandleStateStream(const transport::DecodedMessage& request, transport::Responder responder);
  absl::Status StreamOut(const transport::DecodedMessage& request, proto::expert::StateStreamRequest::Reader body,
                         const cluster::ActorKey& key, transport::Responder responder);
  absl::Status ChunkIn(const transport::DecodedMessage& request, proto::expert::StateStreamRequest::Reader body,
                       const cluster::ActorKey& key, transport::Responder responder);
  // A chunk of a live move's state from the host that held the actor (host_live_state.cc):
  // checked (LiveArrivals) and, once whole, installed on the waiting actor, which
  // touches no other actor and rolls nothing back.
  absl::Status HandleLiveState(const transport::DecodedMessage& request, transport::Responder responder);
  // A request for training step `step` arrived: raises highest_step_seen_ (and opens
  // the step's timeout clock on the StepActor); a step beyond the next is ignored.
  void NoteStep(uint64_t step);
  // The request's placement epoch against the newest one this host knows: its accepted
  // table's, or a newer one the coordinator told its link (a host cut off from pushes
  // still learns it from heartbeat replies). With a coordinator, epoch 0 is refused too.
  absl::Status CheckEpoch(const transport::DecodedMessage& request);
  // OutOfRange (counted) when `step` is beyond the applied version + the step window.
  absl::Status CheckStepWindow(uint64_t step, const char* what) const;
  // A share of the request budget for a request holding `values` floats (counted
  // ResourceExhausted when the budget is spent).
  absl::StatusOr<actor::RequestBudget::Ticket> Admit(size_t values);
  // Every actor was restored to `version`: later steps belonged to the abandoned timeline.
  void RollBackTo(uint64_t version);

  const HostConfig config_;
  metrics::Registry* registry_;
  const ModelActors model_;
  const RequestDoor door_;
  actor::RequestBudget budget_;  // refuses at once: the host's door never waits
  actor::Runtime runtime_{1};  // one thread: the backend is used by one thread at a time
  const std::unique_ptr<EmulatedDevice> device_;  // null unless config.emulate_device_gflops > 0
  const ActorFactory factory_;
  HeldActors held_;
  ReplicaLinks replicas_;
  RestoreChunks restoring_;
  LiveArrivals arriving_;
  std::shared_ptr<StepActor> step_;
  std::shared_ptr<PlacementActor> placement_;
  // Lock-free on purpose: the door raises it on every training request from any thread
  // (NoteStep) and a restore lowers it; each raise tells the StepActor once.
  std::atomic<uint64_t> highest_step_seen_{0};
  absl::Mutex coordinator_mu_;
  cluster::CoordinatorLink* coordinator_ ABSL_GUARDED_BY(coordinator_mu_) = nullptr;
};

}  // namespace sy::expert_host
