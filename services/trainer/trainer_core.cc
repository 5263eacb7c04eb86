// The shared model replica, micro-batch loop, validation and checksum (see trainer_core.h).
#include "services/trainer/trainer_core.h"

#include <utility>

#include "services/cluster/model_options.h"
#include "services/cluster/param_checksum.h"
#include "services/cluster/saved_model.h"
#include "services/trainer/batches.h"

namespace sy::trainer {

absl::StatusOr<TrainerBase> LoadTrainerBase(const cluster::TrainerOptions& options) {
  absl::StatusOr<gpu::ModelConfig> config = cluster::ModelConfigFromOptions(options);
  if (!config.ok()) return config.status();
  absl::StatusOr<gpu::Device> device = gpu::Device::Parse(options.device);
  if (!device.ok()) return device.status();
  absl::StatusOr<Corpus> corpus = LoadCorpus(options.data, options.context + 1);
  if (!corpus.ok()) return corpus.status();
  gpu::BackendOptions backend_options;
  backend_options.num_threads = options.threads;
  absl::StatusOr<std::unique_ptr<gpu::Backend>> backend = gpu::CreateBackend(*device, backend_options);
  if (!backend.ok()) return backend.status();
  return TrainerBase{*config, *std::move(corpus), *std::move(backend)};
}

AppliedStep SumMicroBatches(int64_t step, const std::vector<cluster::MicroBatchStatsValue>& stats,
                            int num_micro_batches) {
  AppliedStep applied;
  StepMetrics& metrics = applied.metrics;
  metrics.step = step;
  int64_t dropped = 0;
  std::vector<int64_t> switch_layer_dropped;
  for (const cluster::MicroBatchStatsValue& s : stats) {
    metrics.loss += s.loss / num_micro_batches;
    metrics.lb_loss += s.lb / num_micro_batches;
    metrics.z_loss += s.z / num_micro_batches;
    applied.tokens += s.tokens;
    dropped += s.dropped_tokens;
    const std::vector<int64_t>& d = s.switch_layer_dropped_tokens;
    if (switch_layer_dropped.size() < d.size()) switch_layer_dropped.resize(d.size(), 0);
    for (size_t i = 0; i < d.size(); ++i) switch_layer_dropped[i] += d[i];
    if (metrics.expert_tokens.empty()) {
      metrics.expert_tokens = s.expert_counts;
      continue;
    }
    for (size_t l = 0; l < s.expert_counts.size() && l < metrics.expert_tokens.size(); ++l) {
      for (size_t e = 0; e < s.expert_counts[l].size() && e < metrics.expert_tokens[l].size(); ++e) {
        metrics.expert_tokens[l][e] += s.expert_counts[l][e];
      }
    }
  }
  const int64_t routed = applied.tokens * static_cast<int64_t>(metrics.expert_tokens.size());
  metrics.dropped_frac = routed > 0 ? static_cast<double>(dropped) / routed : 0;
  for (int64_t d : switch_layer_dropped) {
    metrics.switch_layer_dropped_frac.push_back(applied.tokens > 0 ? static_cast<double>(d) / applied.tokens : 0);
  }
  return applied;
}

absl::StatusOr<std::unique_ptr<TrainerCore>> TrainerCore::Create(const cluster::TrainerOptions& options,
                                                                  const TrainerBase& base,
                                                                  gpu::ExpertExecutor* experts) {
  std::unique_ptr<TrainerCore> core(new TrainerCore(options, base));
  absl::StatusOr<std::unique_ptr<gpu::Model>> model =
      gpu::Model::Create(base.config, base.backend.get(), options.seed, experts);
  if (!model.ok()) return model.status();
  core->model_ = *std::move(model);
  absl::StatusOr<std::unique_ptr<gpu::ParamBlock>> grads = core->model_->NewGradBlock();
  if (!grads.ok()) return grads.status();
  core->grads_ = *std::move(grads);
  return core;
}

absl::Status TrainerCore::TrainStep(int64_t step, ParameterSource& source, std::optional<AppliedStep>* applied) {
  const cluster::TrainerOptions& o = options_;
  const float grad_scale = 1.0f / static_cast<float>(o.micro_batches);
  std::vector<cluster::MicroBatchStatsValue> mine;
  for (int m : source.BeginStep(step)) {
    absl::StatusOr<MicroBatch> batch =
        CutTrainMicroBatch(base_.corpus.train, o.seed, step, m, o.micro_batch, o.context);
    if (!batch.ok()) return batch.status();
    gpu::StepContext ctx;
    ctx.seed = o.seed;
    ctx.step = step;
    ctx.micro_batch = m;
    ctx.training = true;
    absl::StatusOr<gpu::MicroBatchStats> stats = model_->ForwardBackward(batch->inputs, batch->targets, o.micro_batch,
                                                                         o.context, ctx, grad_scale, grads_.get());
    if (!stats.ok()) return stats.status();
    cluster::MicroBatchStatsValue v;
    v.micro_batch = static_cast<uint32_t>(m);
    v.loss = stats->loss;
    v.ce = stats->ce;
    v.lb = stats->lb;
    v.z = stats->z;
    v.tokens = stats->tokens;
    v.dropped_tokens = stats->dropped_tokens;
    v.switch_layer_dropped_tokens = std::move(stats->switch_layer_dropped_tokens);
    v.expert_counts = std::move(stats->expert_counts);
    if (absl::Status s = source.AddMicroBatch(step, m, *grads_, v); !s.ok()) return s;
    mine.push_back(std::move(v));
  }
  return source.Apply(step, mine, applied);
}

absl::StatusOr<double> TrainerCore::ValidationLoss() {
  const cluster::TrainerOptions& o = options_;
  double total = 0;
  for (int k = 0; k < o.eval_batches; ++k) {
    absl::StatusOr<MicroBatch> batch = CutValMicroBatch(base_.corpus.val, k, o.eval_batches, o.micro_batch, o.context);
    if (!batch.ok()) return batch.status();
    absl::StatusOr<gpu::MicroBatchStats> stats =
        model_->Evaluate(batch->inputs, batch->targets, o.micro_batch, o.context);
    if (!stats.ok()) return stats.status();
    total += stats->ce;
  }
  return total / o.eval_batches;
}

absl::StatusOr<std::string> TrainerCore::ParamChecksumHex() const {
  std::vector<float> host;
  if (absl::Status s = model_->params().CopyToHost(&host); !s.ok()) return s;
  cluster::ParamChecksum checksum;
  checksum.Add(host.data(), host.size());
  return checksum.Hex();
}

absl::StatusOr<std::string> TrainerCore::FinishModel() const {
  std::vector<float> host;
  if (absl::Status s = model_->params().CopyToHost(&host); !s.ok()) return s;
  const gpu::Weights weights =
      gpu::WeightsOfParams(model_->params().infos(), std::move(host), static_cast<uint64_t>(options_.steps));
  if (!options_.workdir.empty()) {
    if (absl::Status s = cluster::SaveModel(options_.workdir, model_->config(), weights); !s.ok()) return s;
  }
  return cluster::ChecksumHex(weights.checksum);
}

}  // namespace sy::trainer
