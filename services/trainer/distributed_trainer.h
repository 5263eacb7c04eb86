// One trainer of a distributed run. Global step s: this trainer (index t of T)
// takes micro-batches m with m % T == t, runs ForwardBackward on each with the
// RemoteExpertExecutor (experts on the hosts), pushes each micro-batch's dense
// gradient to the shards and commits its micro-batches (with their stats) to
// every host. The leader (t = 0) then gathers the per-segment squared gradient
// norms, computes the clip scale and learning rate exactly as the standalone
// trainer does, sends Apply to every host, writes metrics.jsonl (with
// bytes_sent) and runs validation every eval_every steps (forward-only, remote).
// Then every trainer pulls the dense parameters of the new version. At the end
// the leader pulls the experts too and writes summary.json with the checksum of
// the whole model: bit-identical to `sy-trainer --standalone` with the same flags.
// A replicated expert (replica i of n serves micro-batches m % n == i) is checked
// at the end: summary.json counts replicated_actors and replica_mismatches.
// With --coordinator the trainer registers, takes the placement from the
// coordinator's table, heartbeats its step and reports its tokens per expert
// after every step. It also survives a host failure: the coordinator's
// trainerControl{rollback{S, checkpoint}, epoch E} aborts the running step (every
// wait ends), the trainer refreshes its table to epoch >= E (connecting to hosts
// that came back on new endpoints, and to hosts that joined after it started:
// the host set grows from the table's endpoints), takes its micro-batches from
// the live trainer set when the order names one, drops its records of steps > S
// and replays from S+1. A step that fails with Unavailable/Aborted/
// DeadlineExceeded (or NotFound/FailedPrecondition: actors moving) waits up to
// --recovery_timeout_s for such a rollback. Requests carry the placement epoch;
// a host's stale-epoch refusal refreshes the table and resends.
// Not thread-safe: one thread drives it (the rollback order arrives on the
// coordinator link's thread and only goes into a mailbox).
//
//   auto trainer = DistributedTrainer::Create(options).value();
//   RunResult r = trainer->Run(std::cout).value();
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <ostream>

#include "absl/status/statusor.h"
#include "common/transport/rpc.h"
#include "gpu/backend.h"
#include "gpu/model/model.h"
#include "services/cluster/cluster_options.h"
#include "services/cluster/coordinator_link.h"
#include "services/cluster/placement.h"
#include "services/trainer/corpus.h"
#include "services/trainer/dense_param_client.h"
#include "services/trainer/host_peers.h"
#include "services/trainer/metrics_files.h"
#include "services/trainer/remote_expert_executor.h"
#include "services/trainer/rollback.h"
#include "services/trainer/rpc_batch.h"
#include "services/trainer/standalone_trainer.h"
#include "services/trainer/step_client.h"

namespace sy::trainer {

class DistributedTrainer : public CallGuard {
 public:
  // Loads the corpus, builds the model replica and connects to every host.
  static absl::StatusOr<std::unique_ptr<DistributedTrainer>> Create(const cluster::ClusterTrainerOptions& options);
  ~DistributedTrainer() override;

  absl::StatusOr<RunResult> Run(std::ostream& progress);
  // The first trainer of the live set leads.
  bool leader() const { return slot_.index == 0; }

  // CallGuard: the data path's hooks (stale-epoch refresh, epoch stamp, rollback abort).
  // A stale-epoch refusal means actors moved, which the coordinator follows with a
  // rollback (they are restored from a checkpoint): RefreshPlacement first waits
  // (bounded) for that order, so the abandoned step's requests are not resent to
  // restored hosts (they would hold a contribution the replay sends again).
  absl::Status RefreshPlacement(uint64_t epoch) override;
  uint64_t epoch() const override { return placement_->epoch(); }
  bool aborted() const override { return rollbacks_.aborted(); }

 private:
  // Run without the final goodbye to the coordinator.
  absl::StatusOr<RunResult> RunSteps(std::ostream& progress);
  // What Run keeps per step, so a rollback can drop the steps it replays.
  struct Records {
    std::unique_ptr<MetricsWriter> writer;  // the leader's (null on the others)
    RunResult* result = nullptr;
    std::map<int64_t, double> throughput;  // step -> tokens/s
  };

  DistributedTrainer() = default;
  // The coordinator's trainerControl call (on the link's thread): validate, post, acknowledge.
  void OnControl(transport::DecodedMessage request, transport::Responder responder);
  // Acts on a rollback order: false when this trainer is not in the live set
  // (it exits cleanly); otherwise the next step is order.step + 1.
  absl::StatusOr<bool> Rollback(const RollbackOrder& order, Records& records);
  // After `failure` of step `step`: whether to wait for a rollback (coordinator
  // mode, a failure a host loss or moved actors explain) and then whether one came in time.
  absl::Status AwaitRollback(int64_t step, const absl::Status& failure);
  // Trains step `step`. The leader sets `applied` to the step's metrics once its
  // Apply went out (the hosts then hold its result even if a later part fails).
  absl::Status TrainStep(int64_t step, std::optional<StepMetrics>* applied);
  // Sends this trainer's tokens per expert of `step` (its micro-batches) to the coordinator.
  void ReportLoad(int64_t step, const std::vector<cluster::MicroBatchStatsValue>& mine);
  absl::StatusOr<double> Validate(uint64_t version);
  absl::StatusOr<std::string> ModelChecksum(uint64_t version);
  // The leader at the end: asks every host holding a replica of a replicated
  // expert for its actors' state checksums (weights + Adam moments) and compares
  // the replicas' (version, checksum); sets result's replica counts and logs every
  // mismatch at ERROR. An error only when a host does not answer.
  absl::Status CheckReplicas(RunResult* result);
  // Connects to the hosts `table` names at endpoints this trainer does not reach yet
  // (joined, or back on a new endpoint), then answers from its placement.
  absl::Status FollowTable(const cluster::DecodedTable& table);
  // Waits (bounded) for the coordinator's table at an epoch >= `min_epoch` and follows it.
  absl::Status RefreshTo(uint64_t min_epoch);

  cluster::ClusterTrainerOptions options_;
  gpu::ModelConfig config_;
  Corpus corpus_;
  std::unique_ptr<gpu::Backend> backend_;
  std::unique_ptr<transport::RpcNode> rpc_;
  std::string id_;                                 // "trainer-N"
  TrainerSlot slot_;                               // place in the live trainer set
  int most_trainers_ = 1;                          // largest live trainer set of the run
  int num_dense_shards_ = 0;
  std::unique_ptr<HostPeers> peers_;               // host index -> peer name on rpc_ (grows with joins)
  RollbackMailbox rollbacks_;                      // outlives coordinator_ (its handler posts here)
  std::atomic<uint64_t> steps_done_{0};            // reported in heartbeats
  std::unique_ptr<cluster::CoordinatorLink> coordinator_;  // with --coordinator: heartbeats, table, load reports, rollbacks
  std::unique_ptr<cluster::LivePlacement> placement_;
  std::unique_ptr<RemoteExpertExecutor> executor_;
  std::unique_ptr<DenseParamClient> dense_;
  std::unique_ptr<StepClient> steps_;
  std::unique_ptr<gpu::Model> model_;
  std::unique_ptr<gpu::ParamBlock> grads_;
};

}  // namespace sy::trainer
