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
// With --coordinator the trainer registers, takes the placement from the
// coordinator's table, heartbeats its step and reports its tokens per expert
// after every step.
// Not thread-safe: one thread drives it.
//
//   auto trainer = DistributedTrainer::Create(options).value();
//   RunResult r = trainer->Run(std::cout).value();
#pragma once

#include <atomic>
#include <memory>
#include <ostream>

#include "absl/status/statusor.h"
#include "common/transport/rpc.h"
#include "gpu/backend.h"
#include "gpu/model/model.h"
#include "services/trainer/cluster_options.h"
#include "services/trainer/coordinator_link.h"
#include "services/trainer/corpus.h"
#include "services/trainer/dense_param_client.h"
#include "services/trainer/metrics_files.h"
#include "services/trainer/placement.h"
#include "services/trainer/remote_expert_executor.h"
#include "services/trainer/standalone_trainer.h"
#include "services/trainer/step_client.h"

namespace sy::trainer {

class DistributedTrainer {
 public:
  // Loads the corpus, builds the model replica and connects to every host.
  static absl::StatusOr<std::unique_ptr<DistributedTrainer>> Create(const ClusterTrainerOptions& options);
  ~DistributedTrainer();

  absl::StatusOr<RunResult> Run(std::ostream& progress);
  bool leader() const { return options_.trainer_index == 0; }

 private:
  DistributedTrainer() = default;
  // Trains step `step`; the leader fills `metrics` (others leave it empty).
  absl::Status TrainStep(int64_t step, StepMetrics* metrics);
  // Sends this trainer's tokens per expert of `step` (its micro-batches) to the coordinator.
  void ReportLoad(int64_t step, const std::vector<MicroBatchStatsValue>& mine);
  absl::StatusOr<double> Validate(uint64_t version);
  absl::StatusOr<std::string> ModelChecksum(uint64_t version);

  ClusterTrainerOptions options_;
  gpu::ModelConfig config_;
  Corpus corpus_;
  std::unique_ptr<gpu::Backend> backend_;
  std::unique_ptr<transport::RpcNode> rpc_;
  std::unique_ptr<CoordinatorLink> coordinator_;  // with --coordinator: heartbeats, table, load reports
  std::atomic<uint64_t> steps_done_{0};            // reported in heartbeats
  std::unique_ptr<Placement> placement_;
  std::unique_ptr<RemoteExpertExecutor> executor_;
  std::unique_ptr<DenseParamClient> dense_;
  std::unique_ptr<StepClient> steps_;
  std::unique_ptr<gpu::Model> model_;
  std::unique_ptr<gpu::ParamBlock> grads_;
};

}  // namespace sy::trainer
