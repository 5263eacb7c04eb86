// A process's connection to sy-coordinator (proto/coordinator.capnp): register
// (host or trainer), heartbeat in the background with the process's step (and
// register again when the coordinator asks, e.g. after it restarted; as a new node,
// after dropping its state, when it says the node was declared failed), learn the
// current placement epoch from every reply, fetch the
// placement table, and send a trainer's per-expert load report every step.
// CoordinatorPlacement turns the coordinator's table into the data path's
// Placement (host "host-N" -> index N). Thread-safe: calls may come from any
// thread; the heartbeat runs on its own thread until destruction.
//
//   auto link = CoordinatorLink::Start({"trainer-0", false, "tcp://127.0.0.1:5000"}, [&] { return step; }).value();
//   auto table = link->WaitForTable(absl::Seconds(30)).value();
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "gpu/model/config.h"
#include "services/cluster/placement.h"
#include "services/cluster/placement_codec.h"

namespace sy::cluster {

struct CoordinatorLinkOptions {
  std::string node_id;          // "host-N" or "trainer-N": also the routing id
  bool is_host = false;         // registers as an expert host (else as a trainer)
  std::string coordinator;      // coordinator endpoint, e.g. "tcp://127.0.0.1:5000"
  std::string endpoint;         // a host's own ROUTER endpoint ("" for trainers)
  // Actors a host holds now, sent with every registration (a coordinator that
  // restarted must learn that nothing was lost); null: none.
  std::function<std::vector<cluster::ActorKey>()> held_actors;
  // The node's model (ModelShapeOf), sent with every registration: the coordinator
  // places its actors, and refuses a node whose model differs from the cluster's.
  cluster::ModelShape shape;
  absl::Duration call_timeout = absl::Seconds(10);
  // Called with the current epoch when a heartbeat reply says the coordinator declared
  // this node failed, before it registers again as a new node (a new incarnation): a
  // host drops its actors here. Null: nothing to drop.
  std::function<void(uint64_t epoch)> on_fenced;
  transport::CurveKeys curve;   // the node's keys (LoadNodeCurve); empty: plain TCP
};

class CoordinatorLink {
 public:
  // Registers (Unavailable when the coordinator does not answer; FailedPrecondition
  // when the cluster's model has another shape), then heartbeats
  // with step() every interval the coordinator asked for. `handler` answers the
  // coordinator's calls on this connection (a trainer's trainerControl); null
  // refuses them.
  static absl::StatusOr<std::unique_ptr<CoordinatorLink>> Start(const CoordinatorLinkOptions& options,
                                                                std::function<uint64_t()> step,
                                                                transport::RpcNode::Handler handler = nullptr);
  ~CoordinatorLink();

  // Polls the table until every actor of the model is placed at an epoch >=
  // `min_epoch`; DeadlineExceeded after `timeout`.
  absl::StatusOr<cluster::DecodedTable> WaitForTable(absl::Duration timeout, uint64_t min_epoch = 0);
  // Sends a trainer's tokens per expert for `step` (tokens[s][e] for Switch layer s) and
  // returns at once: load is advice, and a coordinator that is stopped or slow must not
  // hold training. While the previous report is unanswered this one is dropped
  // (ResourceExhausted, nothing sent); a report that fails is logged when its call ends.
  absl::Status ReportLoad(uint64_t step, const std::vector<std::vector<int64_t>>& tokens);
  // Sends `state` (an actor's state at `step`) to the coordinator as checkpoint
  // chunks of at most `chunk_bytes` (rounded down to whole f32 words) and calls
  // `done` once every chunk was acknowledged, or with the first error.
  void StreamCheckpoint(uint64_t checkpoint_id, uint64_t step, const cluster::ActorKey& actor,
                        std::shared_ptr<const std::string> state, uint64_t chunk_bytes,
                        std::function<void(absl::Status, uint32_t chunks)> done);
  // A last heartbeat at `step` saying this node finished and leaves (a trainer at
  // the end of its run), then no more heartbeats. Best effort: logged on failure.
  void Leave(uint64_t step);
  // Newest placement epoch the coordinator told us (register, heartbeat, table, load replies).
  uint64_t epoch() const { return epoch_->load(); }
  uint64_t heartbeats() const { return heartbeats_.load(); }

 private:
  CoordinatorLink() = default;
  absl::Status Register();
  // One heartbeat at `step`; `leaving` marks the last.
  void Heartbeat(uint64_t step, bool leaving);
  absl::StatusOr<transport::DecodedMessage> Call(capnp::MallocMessageBuilder& header);
  void HeartbeatLoop();

  CoordinatorLinkOptions options_;
  std::function<uint64_t()> step_;
  uint64_t incarnation_ = 0;  // a new one after being fenced (heartbeat thread only, after Start)
  std::unique_ptr<transport::RpcNode> rpc_;
  // Shared with the answers of asynchronous calls, which may outlive the link.
  std::shared_ptr<std::atomic<uint64_t>> epoch_ = std::make_shared<std::atomic<uint64_t>>(0);
  std::shared_ptr<std::atomic<bool>> load_report_in_flight_ = std::make_shared<std::atomic<bool>>(false);
  std::atomic<uint64_t> heartbeats_{0};
  std::atomic<int64_t> interval_ms_{500};
  absl::Notification stop_;
  std::thread heartbeat_;
};

// The coordinator's table as the data path's Placement: every replica of an
// expert is kept (replica i of n serves micro-batches m with m % n == i);
// HostOfExpert is the first. A dense shard is served by its first host only (its
// pushes and pulls are not split by micro-batch, so a table that replicates one
// still sends everything to the first). A table made by live moves keeps the
// holders before them too: they serve steps up to the moves' boundary, so a trainer
// that takes the table early still sends those steps where the actor still is.
class CoordinatorPlacement : public Placement {
 public:
  // InvalidArgument when the table's shape differs from the model's (Switch layers,
  // experts, `num_dense_shards`), an actor is missing, a host id (of any replica)
  // is not "host-N" with N < num_hosts, an expert names one host twice, or a live
  // move does not match the table.
  static absl::StatusOr<std::unique_ptr<CoordinatorPlacement>> Create(const gpu::ModelConfig& config,
                                                                      int num_dense_shards, int num_hosts,
                                                                      const cluster::DecodedTable& table);
  int num_hosts() const override { return num_hosts_; }
  uint64_t epoch() const override { return epoch_; }
  int HostOfExpert(int layer, int expert) const override;
  std::vector<int> ExpertReplicas(int layer, int expert) const override;
  int HostOfDenseShard(int shard) const override;
  std::vector<int> ExpertReplicasAt(uint64_t step, int layer, int expert) const override;
  int HostOfDenseShardAt(uint64_t step, int shard) const override;

 private:
  // Host indices of every actor under one set of entries.
  struct Holders {
    std::vector<std::vector<int>> experts;  // (switch_layer * E + e) -> host indices, replica order
    std::vector<int> shards;                // dense shard -> host index
  };
  CoordinatorPlacement() = default;
  absl::Status Fill(const std::map<ActorKey, std::vector<std::string>>& entries, Holders* out) const;
  // (switch_layer * E + e) of model layer `layer`'s expert.
  size_t ExpertIndex(int layer, int expert) const;
  const Holders& ServingStep(uint64_t step) const { return step <= live_after_ ? before_ : now_; }
  gpu::ModelConfig config_;
  int switch_layers_ = 0;
  int num_dense_shards_ = 0;
  int num_hosts_ = 1;
  uint64_t epoch_ = 0;
  Holders now_;
  uint64_t live_after_ = 0;  // the live moves' last step on their sources (0: none)
  Holders before_;           // the holders before the live moves (when live_after_ > 0)
};

// The actors of `config` as the coordinator places them: its Switch layers, experts
// per Switch layer and dense shards (DenseShardParams).
cluster::ModelShape ModelShapeOf(const gpu::ModelConfig& config);

}  // namespace sy::cluster
