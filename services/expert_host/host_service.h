// The expert host's request handling: builds one ParamActor per expert and per
// dense shard this host owns (initial weights identical to the in-process model:
// the full model's init from the seed, restricted to the owned slices) plus the
// StepActor, and serves RpcNode requests. Every request is checked at the door
// before an actor sees it: unknown or not-owned expert/shard -> NotFound; wrong
// d_model, token count, tensor count, dtype or shape -> InvalidArgument; an
// inconsistent step/version -> InvalidArgument. Failures get an error reply and
// change nothing. Metrics: sy_host_requests_total{kind}, sy_host_request_bytes_total,
// sy_host_errors_total{code} (+ the actors' and StepActor's).
// With a coordinator: a placement table may add actors to this host (built at
// runtime, refused with Unavailable until a checkpoint restore loads them; while
// any is waiting, step commits are refused too) or remove some (NotFound from
// then on); a data request stamped with a placement epoch older than the last
// accepted table is refused with Aborted naming the current epoch. An actor the
// table replicates exchanges its gradient contributions with the other replicas'
// hosts (REPLICA_GRADIENTS, host to host over the same node; see param_actor.h).
// Thread-safe: Handle may run on any thread (it only Tells actors; the actor set
// is guarded by a mutex, and placement changes run on one strand of the runtime,
// the thread that uses the backend).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/actor/runtime.h"
#include "common/metrics/registry.h"
#include "common/transport/rpc.h"
#include "gpu/backend.h"
#include "gpu/model/config.h"
#include "gpu/model/optimizer.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/coordinator_link.h"
#include "services/cluster/placement.h"
#include "services/expert_host/param_actor.h"
#include "services/expert_host/step_actor.h"

namespace sy::expert_host {

struct HostConfig {
  gpu::ModelConfig model;
  gpu::AdamWConfig adam;
  uint64_t seed = 1;
  int micro_batches = 1;       // M
  int max_bucket_rows = 0;     // tokens of one micro-batch (B*T): no bucket is larger
  int host_index = 0;
  int num_hosts = 1;
  absl::Duration step_timeout = absl::Seconds(60);
  uint64_t checkpoint_every = 0;  // actors keep their state at recent multiples of it (0: none)
  // Fault injection for tests: the experts refuse to stream the checkpoint at this step
  // (dense shards still stream, so the checkpoint is left half-written); 0: never.
  uint64_t fail_checkpoint_at_step = 0;
};

class HostService {
 public:
  // `backend` and `registry` must outlive the service. The placement is the
  // static rule for now (the coordinator's table will replace it).
  static absl::StatusOr<std::unique_ptr<HostService>> Create(const HostConfig& config, gpu::Backend* backend,
                                                              metrics::Registry* registry);
  ~HostService();

  void Handle(transport::DecodedMessage request, transport::Responder responder);
  size_t num_experts() const;
  size_t num_shards() const;
  // Actors placed here at runtime whose restore has not landed yet.
  size_t num_awaiting_restore() const;
  // The actors this host holds now (coordinator keys, in key order).
  std::vector<cluster::ActorKey> held_actors() const;
  uint64_t step_timeouts() const { return step_->timeouts(); }
  // Highest training step a forward/backward/commit named so far (0 before any).
  uint64_t highest_step_seen() const { return highest_step_seen_.load(); }
  // Where checkpoint state is streamed (null: no coordinator). Must outlive its use;
  // set it to null before destroying the link.
  void set_coordinator_link(cluster::CoordinatorLink* link) { coordinator_.store(link); }
  // Placement epoch of the last coordinator table this host accepted (0: none).
  uint64_t placement_epoch() const { return placement_epoch_.load(); }
  // The node this host serves on, also used to send replica gradients to the other
  // replicas' hosts (null: none). Must outlive its use; set it to null before closing it.
  void set_rpc(transport::RpcNode* rpc) { rpc_.store(rpc); }

 private:
  HostService(const HostConfig& config, gpu::Backend* backend, metrics::Registry* registry);
  // A new actor for `key` with the model's initial weights for it (valid ones unless
  // awaiting_restore). Uses the backend: call on the runtime's thread once serving.
  absl::StatusOr<std::shared_ptr<ParamActor>> BuildActor(const cluster::ActorKey& key,
                                                         bool awaiting_restore);
  // InvalidArgument when `key` names no actor of this model.
  absl::Status CheckKey(const cluster::ActorKey& key) const;
  // Aborted (with the current epoch as transport::kCurrentEpochPayload) when the request
  // carries a placement epoch older than the accepted one; epoch 0 is not checked.
  absl::Status CheckEpoch(const transport::DecodedMessage& request) const;
  // Makes the actors placed on this host exactly the keys of `mine` (on placement_strand_);
  // each maps to its other replicas' hosts (empty: not replicated), `endpoints` says
  // where they are.
  absl::Status ApplyPlacement(uint64_t epoch, const std::map<cluster::ActorKey, std::vector<std::string>>& mine,
                              const std::map<std::string, std::string>& endpoints);
  // Connects to the replica peers' hosts and tells every actor its peers (on placement_strand_).
  void SetReplicas(const std::map<cluster::ActorKey, std::vector<std::string>>& mine,
                   const std::map<std::string, std::string>& endpoints);
  // Sends `actor`'s own contributions of `step` to replica host `peer` (ReplicaSender).
  void SendReplicaGradients(const cluster::ActorKey& actor, const std::string& peer, uint64_t step,
                            const std::vector<uint32_t>& micro_batches, const std::vector<std::vector<float>>& grads);
  // Another replica's contributions: checked at the door, then to the actor.
  absl::Status HandleReplicaGradients(const transport::DecodedMessage& request, transport::Responder responder);
  // Elements of `key`'s state (its gradients' size).
  int64_t ActorSize(const cluster::ActorKey& key) const;
  // The actor set in key order (for the StepActor).
  std::vector<std::shared_ptr<ParamActor>> AllActors() const ABSL_SHARED_LOCKS_REQUIRED(actors_mu_);
  absl::Status Dispatch(proto::MessageKind kind, const transport::DecodedMessage& request,
                        transport::Responder responder);
  absl::Status HandleForward(const transport::DecodedMessage& request, transport::Responder responder);
  absl::Status HandleBackward(const transport::DecodedMessage& request, transport::Responder responder);
  absl::Status HandlePush(const transport::DecodedMessage& request, transport::Responder responder);
  absl::Status HandlePull(const transport::DecodedMessage& request, transport::Responder responder);
  absl::Status HandleStep(const transport::DecodedMessage& request, transport::Responder responder);
  // A coordinator's placement update: actors it adds to this host are built and wait for
  // a restore, actors it no longer places here are removed. A table older than the
  // accepted one is refused (Aborted); one naming actors the model lacks, InvalidArgument.
  absl::Status HandlePlacement(const transport::DecodedMessage& request, transport::Responder responder);
  // Checkpoint stream out / restore chunk in (host_state_stream.cc). A completed restore
  // to step S rolls the step protocol back to S and lets a restoring actor serve.
  absl::Status HandleStateStream(const transport::DecodedMessage& request, transport::Responder responder);
  // The actor of a coordinator key (Switch-layer index -> model layer); NotFound when not held.
  absl::StatusOr<std::shared_ptr<ParamActor>> ActorOf(const cluster::ActorKey& actor) const;
  absl::StatusOr<std::shared_ptr<ParamActor>> Expert(uint32_t layer, uint32_t expert) const;
  absl::StatusOr<std::shared_ptr<ParamActor>> Shard(uint32_t shard) const;
  // The bucket frame checked against (rows, d_model) and decoded to floats.
  absl::StatusOr<std::vector<float>> BucketFrame(const transport::DecodedMessage& request, uint32_t rows,
                                                 uint32_t d_model, proto::DType* dtype) const;
  void NoteStep(uint64_t step);
  // InvalidArgument unless micro_batch < M.
  absl::Status CheckMicroBatch(uint32_t micro_batch) const;

  HostConfig config_;
  gpu::Backend* backend_;
  cluster::StaticPlacement placement_;
  std::vector<gpu::ParamInfo> infos_;
  std::vector<uint32_t> shard_params_;  // dense shard -> canonical parameter index
  std::vector<int> switch_layers_;      // Switch-layer index (coordinator keys) -> model layer
  metrics::Registry* registry_;
  actor::Runtime runtime_{1};  // one thread: the backend is used by one thread at a time
  std::shared_ptr<actor::Strand> placement_strand_;
  mutable absl::Mutex actors_mu_;
  std::map<cluster::ActorKey, std::shared_ptr<ParamActor>> actors_ ABSL_GUARDED_BY(actors_mu_);
  std::set<cluster::ActorKey> awaiting_restore_ ABSL_GUARDED_BY(actors_mu_);
  std::shared_ptr<StepActor> step_;
  std::atomic<uint64_t> highest_step_seen_{0};
  std::atomic<uint64_t> placement_epoch_{0};
  std::atomic<cluster::CoordinatorLink*> coordinator_{nullptr};
  std::atomic<transport::RpcNode*> rpc_{nullptr};
  // On placement_strand_: each replicated actor's peers as last told, and the
  // transport peer names connected so far (host id @ endpoint).
  std::map<cluster::ActorKey, std::vector<std::string>> replica_peers_;
  std::set<std::string> connected_peers_;
  std::map<std::string, std::string> peer_names_;  // host id -> transport peer name
  absl::Mutex peer_names_mu_;
  absl::Mutex restore_mu_;
  std::map<cluster::ActorKey, std::string> restoring_ ABSL_GUARDED_BY(restore_mu_);  // chunks so far
};

}  // namespace sy::expert_host
