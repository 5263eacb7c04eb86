// One trainer of a distributed run, on the shared trainer core and training loop
// (trainer_core.h, training_loop.h). Global step s: this trainer (index t of T)
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
// Replicated experts are checked at the end (replica_check.h): summary.json counts
// replicated_actors and replica_mismatches.
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
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/transport/rpc.h"
#include "services/cluster/cluster_options.h"
#include "services/cluster/coordinator_link.h"
#include "services/cluster/placement.h"
#include "services/trainer/dense_param_client.h"
#include "services/trainer/host_peers.h"
#include "services/trainer/remote_expert_executor.h"
#include "services/trainer/rollback.h"
#include "services/trainer/rpc_batch.h"
#include "services/trainer/run_records.h"
#include "services/trainer/step_client.h"
#include "services/trainer/trainer_core.h"
#include "services/trainer/training_loop.h"

namespace sy::trainer {

class DistributedTrainer : public CallGuard, private ParameterSource, private TrainerRole {
 public:
  // Loads the corpus, builds the model replica and connects to every host.
  static absl::StatusOr<std::unique_ptr<DistributedTrainer>> Create(const cluster::ClusterTrainerOptions& options);
  ~DistributedTrainer() override;

  // `live` (optional): the /metrics figures, updated as steps train.
  absl::StatusOr<RunResult> Run(std::ostream& progress, TrainerMetrics* live = nullptr);

  // CallGuard: the data path's hooks (stale-epoch refresh, epoch stamp, rollback abort).
  // A stale-epoch refusal means actors moved, which the coordinator follows with a
  // rollback (they are restored from a checkpoint): RefreshPlacement first waits
  // (bounded) for that order, so the abandoned step's requests are not resent to
  // restored hosts (they would hold a contribution the replay sends again). Actors
  // moved live have no rollback: a table the coordinator gives at once is taken.
  absl::Status RefreshPlacement(uint64_t epoch) override;
  uint64_t epoch() const override { return placement_->epoch(); }
  bool aborted() const override { return rollbacks_.aborted(); }

 private:
  DistributedTrainer() = default;
  // Run without the final goodbye to the coordinator.
  absl::StatusOr<RunResult> RunSteps(std::ostream& progress, TrainerMetrics* live);

  // ParameterSource: this trainer's micro-batches; dense gradients pushed to the
  // shards; commit, and the leader's gather and Apply; the new dense parameters pulled.
  std::vector<int> BeginStep(int64_t step) override;
  absl::Status AddMicroBatch(int64_t step, int m, const gpu::ParamBlock& grads,
                             cluster::MicroBatchStatsValue& stats) override;
  absl::Status Apply(int64_t step, const std::vector<cluster::MicroBatchStatsValue>& mine,
                     std::optional<AppliedStep>* applied) override;

  // TrainerRole. The first trainer of the live set leads.
  bool leader() const override { return slot_.index == 0; }
  // Acts on the coordinator's stop (an error) or rollback order, if one came.
  absl::StatusOr<LoopTurn> NextTurn(RunRecords& records) override;
  absl::Status TrainStep(int64_t step, std::optional<AppliedStep>* applied) override {
    return core_->TrainStep(step, *this, applied);
  }
  void StepDone(int64_t step) override { steps_done_.store(static_cast<uint64_t>(step)); }
  // Forward-only, the experts at version `step` on the hosts.
  absl::StatusOr<double> Validate(int64_t step) override;
  // Pulls every expert of the last version, then checks the replicated experts.
  absl::StatusOr<std::string> FinalChecksum(RunResult* result) override;
  // After `failure` of step `step`: whether to wait for a rollback (coordinator
  // mode, a failure a host loss or moved actors explain) and then whether one came in time.
  absl::Status AwaitRecovery(int64_t step, const absl::Status& failure) override;
  // Every host and trainer the run used (joined hosts included, trainers that
  // finished or failed before a late rollback too).
  RunShape shape() const override { return {peers_->size(), most_trainers_}; }

  // The coordinator's trainerControl call (on the link's thread): validate, post, acknowledge.
  void OnControl(transport::DecodedMessage request, transport::Responder responder);
  // Acts on a rollback order: false when this trainer is not in the live set
  // (it exits cleanly); otherwise the next step is order.step + 1.
  absl::StatusOr<bool> Rollback(const RollbackOrder& order, RunRecords& records);
  // Sends this trainer's tokens per expert of `step` (its micro-batches) to the coordinator.
  void ReportLoad(int64_t step, const std::vector<cluster::MicroBatchStatsValue>& mine);
  // Connects to the hosts `table` names at endpoints this trainer does not reach yet
  // (joined, or back on a new endpoint), then answers from its placement.
  absl::Status FollowTable(const cluster::DecodedTable& table);
  // Waits (bounded) for the coordinator's table at an epoch >= `min_epoch` and follows it.
  absl::Status RefreshTo(uint64_t min_epoch);

  cluster::ClusterTrainerOptions options_;
  TrainerBase base_;  // the backend outlives everything below, which allocates on it
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
  std::unique_ptr<TrainerCore> core_;  // its model holds executor_
};

}  // namespace sy::trainer
