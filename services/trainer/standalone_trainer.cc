// The single-process parameter source: in-process experts, gradient tree and AdamW (see standalone_trainer.h).
#include "services/trainer/standalone_trainer.h"

#include <chrono>
#include <utility>

#include "common/log/log.h"
#include "services/cluster/model_options.h"

namespace sy::trainer {

StandaloneTrainer::~StandaloneTrainer() = default;

absl::StatusOr<std::unique_ptr<StandaloneTrainer>> StandaloneTrainer::Create(const cluster::TrainerOptions& options) {
  absl::StatusOr<TrainerBase> base = LoadTrainerBase(options);
  if (!base.ok()) return base.status();
  std::unique_ptr<StandaloneTrainer> t(new StandaloneTrainer());
  t->base_ = *std::move(base);
  const gpu::ModelConfig& config = t->base_.config;
  gpu::Backend* backend = t->base_.backend.get();
  if (options.wire_dtype == "bf16") t->wire_executor_ = std::make_unique<Bf16WireExecutor>(backend, config.d_model);
  absl::StatusOr<std::unique_ptr<TrainerCore>> core = TrainerCore::Create(options, t->base_, t->wire_executor_.get());
  if (!core.ok()) return core.status();
  t->core_ = *std::move(core);
  gpu::Model& model = t->core_->model();
  if (t->wire_executor_ != nullptr) {
    t->expert_executor_ = std::make_unique<gpu::InProcessExpertExecutor>(config, &model.params());
    t->wire_executor_->set_inner(t->expert_executor_.get());
  }
  absl::StatusOr<std::unique_ptr<gpu::AdamW>> optimizer =
      gpu::AdamW::Create(model.params(), cluster::AdamWConfigFromOptions(options));
  if (!optimizer.ok()) return optimizer.status();
  t->optimizer_ = *std::move(optimizer);
  absl::StatusOr<std::unique_ptr<gpu::ParamBlock>> sum = model.NewGradBlock();
  if (!sum.ok()) return sum.status();
  t->step_grads_ = *std::move(sum);
  absl::StatusOr<std::unique_ptr<gpu::GradTree>> tree =
      gpu::GradTree::Create(backend, t->step_grads_->size(), options.micro_batches);
  if (!tree.ok()) return tree.status();
  t->tree_ = *std::move(tree);
  if (options.dense_wire_dtype == "bf16") {  // as a cluster does: see StandaloneTrainer::master_
    absl::StatusOr<std::unique_ptr<gpu::ParamBlock>> master = gpu::ParamBlock::Create(backend, model.params().infos());
    if (!master.ok()) return master.status();
    t->master_ = *std::move(master);
    if (absl::Status s = backend->CopyDeviceToDevice(t->master_->data(), model.params().data(),
                                                     model.params().size() * sizeof(float));
        !s.ok()) {
      return s;
    }
    gpu::RoundBf16DenseWire(&model.params());
    t->tree_->set_bf16_ranges(gpu::Bf16DenseWireRanges(model.params().infos()));
  }
  SY_LOG(INFO) << "standalone trainer: " << config.DebugString() << ", " << model.params().size()
               << " parameters on " << backend->device().ToString() << ", corpus " << t->base_.corpus.train.size()
               << " train + " << t->base_.corpus.val.size() << " val bytes";
  return t;
}

std::vector<int> StandaloneTrainer::BeginStep(int64_t) {
  tree_->Reset();
  std::vector<int> all(static_cast<size_t>(core_->options().micro_batches));
  for (size_t m = 0; m < all.size(); ++m) all[m] = static_cast<int>(m);
  return all;
}

absl::Status StandaloneTrainer::AddMicroBatch(int64_t, int m, const gpu::ParamBlock& grads,
                                              cluster::MicroBatchStatsValue&) {
  return tree_->Add(m, grads.data());
}

absl::Status StandaloneTrainer::Apply(int64_t step, const std::vector<cluster::MicroBatchStatsValue>& mine,
                                      std::optional<AppliedStep>* applied) {
  const cluster::TrainerOptions& o = core_->options();
  absl::StatusOr<const float*> sum = tree_->Result();
  if (!sum.ok()) return sum.status();
  gpu::Backend* backend = base_.backend.get();
  if (absl::Status s = backend->CopyDeviceToDevice(step_grads_->data(), *sum, step_grads_->size() * sizeof(float));
      !s.ok()) {
    return s;
  }
  const float lr = gpu::LearningRate(step, o.steps, o.warmup, static_cast<float>(o.lr));
  gpu::ParamBlock& params = core_->model().params();
  if (absl::StatusOr<float> norm = optimizer_->Step(master_ ? master_.get() : &params, step_grads_.get(), lr);
      !norm.ok()) {
    return norm.status();
  }
  if (master_ != nullptr) {
    if (absl::Status s = backend->CopyDeviceToDevice(params.data(), master_->data(), params.size() * sizeof(float));
        !s.ok()) {
      return s;
    }
    gpu::RoundBf16DenseWire(&params);
  }
  if (absl::Status s = backend->Synchronize(); !s.ok()) return s;
  *applied = SumMicroBatches(step, mine, o.micro_batches);
  return absl::OkStatus();
}

absl::StatusOr<StepMetrics> StandaloneTrainer::TrainStep(int64_t step) {
  const auto start = std::chrono::steady_clock::now();
  std::optional<AppliedStep> applied;
  if (absl::Status s = core_->TrainStep(step, *this, &applied); !s.ok()) return s;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  StepMetrics metrics = std::move(applied->metrics);
  metrics.tokens_per_s = applied->tokens / seconds;
  return metrics;
}

absl::StatusOr<RunResult> StandaloneTrainer::Run(std::ostream& progress, TrainerMetrics* live) {
  const cluster::TrainerOptions& o = core_->options();
  absl::StatusOr<RunRecords> records = RunRecords::Open(o, /*writes_files=*/true, progress);
  if (!records.ok()) return records.status();
  return RunTraining(o, *this, *records, /*first_step=*/1, live);
}

}  // namespace sy::trainer
