// The single-process training loop (see standalone_trainer.h).
#include "services/trainer/standalone_trainer.h"

#include <chrono>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "services/cluster/model_options.h"
#include "services/cluster/param_checksum.h"
#include "services/trainer/batches.h"
#include "services/trainer/progress.h"

namespace sy::trainer {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// total += counts, elementwise (total starts empty and takes the first shape).
void AddExpertCounts(const std::vector<std::vector<int64_t>>& counts, std::vector<std::vector<int64_t>>* total) {
  if (total->empty()) {
    *total = counts;
    return;
  }
  for (size_t l = 0; l < counts.size() && l < total->size(); ++l) {
    for (size_t e = 0; e < counts[l].size() && e < (*total)[l].size(); ++e) (*total)[l][e] += counts[l][e];
  }
}

bool IsEvalStep(int64_t step, const cluster::TrainerOptions& o) {
  return step == o.steps || (o.eval_every > 0 && step % o.eval_every == 0);
}

}  // namespace

StandaloneTrainer::~StandaloneTrainer() = default;

absl::StatusOr<std::unique_ptr<StandaloneTrainer>> StandaloneTrainer::Create(const cluster::TrainerOptions& options) {
  absl::StatusOr<gpu::ModelConfig> config = cluster::ModelConfigFromOptions(options);
  if (!config.ok()) return config.status();
  absl::StatusOr<gpu::Device> device = gpu::Device::Parse(options.device);
  if (!device.ok()) return device.status();
  absl::StatusOr<Corpus> corpus = LoadCorpus(options.data, options.context + 1);
  if (!corpus.ok()) return corpus.status();

  std::unique_ptr<StandaloneTrainer> t(new StandaloneTrainer());
  t->options_ = options;
  t->corpus_ = *std::move(corpus);
  gpu::BackendOptions backend_options;
  backend_options.num_threads = options.threads;
  absl::StatusOr<std::unique_ptr<gpu::Backend>> backend = gpu::CreateBackend(*device, backend_options);
  if (!backend.ok()) return backend.status();
  t->backend_ = *std::move(backend);
  if (options.wire_dtype == "bf16") {
    t->wire_executor_ = std::make_unique<Bf16WireExecutor>(t->backend_.get(), config->d_model);
  }
  absl::StatusOr<std::unique_ptr<gpu::Model>> model =
      gpu::Model::Create(*config, t->backend_.get(), options.seed, t->wire_executor_.get());
  if (!model.ok()) return model.status();
  t->model_ = *std::move(model);
  if (t->wire_executor_ != nullptr) {
    t->expert_executor_ = std::make_unique<gpu::InProcessExpertExecutor>(*config, &t->model_->params());
    t->wire_executor_->set_inner(t->expert_executor_.get());
  }
  absl::StatusOr<std::unique_ptr<gpu::AdamW>> optimizer =
      gpu::AdamW::Create(t->model_->params(), cluster::AdamWConfigFromOptions(options));
  if (!optimizer.ok()) return optimizer.status();
  t->optimizer_ = *std::move(optimizer);
  absl::StatusOr<std::unique_ptr<gpu::ParamBlock>> micro = t->model_->NewGradBlock();
  if (!micro.ok()) return micro.status();
  t->micro_grads_ = *std::move(micro);
  absl::StatusOr<std::unique_ptr<gpu::ParamBlock>> sum = t->model_->NewGradBlock();
  if (!sum.ok()) return sum.status();
  t->step_grads_ = *std::move(sum);
  absl::StatusOr<std::unique_ptr<gpu::GradTree>> tree =
      gpu::GradTree::Create(t->backend_.get(), t->micro_grads_->size(), options.micro_batches);
  if (!tree.ok()) return tree.status();
  t->tree_ = *std::move(tree);
  SY_LOG(INFO) << "standalone trainer: " << config->DebugString() << ", " << t->model_->params().size()
               << " parameters on " << device->ToString() << ", corpus " << t->corpus_.train.size()
               << " train + " << t->corpus_.val.size() << " val bytes";
  return t;
}

absl::StatusOr<StepMetrics> StandaloneTrainer::TrainStep(int64_t step) {
  const cluster::TrainerOptions& o = options_;
  const auto start = std::chrono::steady_clock::now();
  const float grad_scale = 1.0f / static_cast<float>(o.micro_batches);
  StepMetrics metrics;
  metrics.step = step;
  int64_t tokens = 0, dropped = 0;
  tree_->Reset();
  for (int m = 0; m < o.micro_batches; ++m) {
    absl::StatusOr<MicroBatch> batch = CutTrainMicroBatch(corpus_.train, o.seed, step, m, o.micro_batch, o.context);
    if (!batch.ok()) return batch.status();
    gpu::StepContext ctx;
    ctx.seed = o.seed;
    ctx.step = step;
    ctx.micro_batch = m;
    ctx.training = true;
    absl::StatusOr<gpu::MicroBatchStats> stats = model_->ForwardBackward(
        batch->inputs, batch->targets, o.micro_batch, o.context, ctx, grad_scale, micro_grads_.get());
    if (!stats.ok()) return stats.status();
    if (absl::Status s = tree_->Add(m, micro_grads_->data()); !s.ok()) return s;
    metrics.loss += stats->loss / o.micro_batches;
    metrics.lb_loss += stats->lb / o.micro_batches;
    metrics.z_loss += stats->z / o.micro_batches;
    tokens += stats->tokens;
    dropped += stats->dropped_tokens;
    AddExpertCounts(stats->expert_counts, &metrics.expert_tokens);
  }
  absl::StatusOr<const float*> sum = tree_->Result();
  if (!sum.ok()) return sum.status();
  if (absl::Status s = backend_->CopyDeviceToDevice(step_grads_->data(), *sum, step_grads_->size() * sizeof(float));
      !s.ok()) {
    return s;
  }
  const float lr = gpu::LearningRate(step, o.steps, o.warmup, static_cast<float>(o.lr));
  if (absl::StatusOr<float> norm = optimizer_->Step(&model_->params(), step_grads_.get(), lr); !norm.ok()) {
    return norm.status();
  }
  if (absl::Status s = backend_->Synchronize(); !s.ok()) return s;
  const int64_t routed = tokens * static_cast<int64_t>(metrics.expert_tokens.size());
  metrics.dropped_frac = routed > 0 ? static_cast<double>(dropped) / routed : 0;
  metrics.tokens_per_s = tokens / SecondsSince(start);
  return metrics;
}

absl::StatusOr<double> StandaloneTrainer::Validate() {
  const cluster::TrainerOptions& o = options_;
  double total = 0;
  for (int k = 0; k < o.eval_batches; ++k) {
    absl::StatusOr<MicroBatch> batch = CutValMicroBatch(corpus_.val, k, o.eval_batches, o.micro_batch, o.context);
    if (!batch.ok()) return batch.status();
    absl::StatusOr<gpu::MicroBatchStats> stats =
        model_->Evaluate(batch->inputs, batch->targets, o.micro_batch, o.context);
    if (!stats.ok()) return stats.status();
    total += stats->ce;
  }
  return total / o.eval_batches;
}

absl::StatusOr<std::string> StandaloneTrainer::ParamChecksumHex() const {
  std::vector<float> host;
  if (absl::Status s = model_->params().CopyToHost(&host); !s.ok()) return s;
  cluster::ParamChecksum checksum;
  checksum.Add(host.data(), host.size());
  return checksum.Hex();
}

absl::StatusOr<RunResult> StandaloneTrainer::Run(std::ostream& progress) {
  const cluster::TrainerOptions& o = options_;
  std::unique_ptr<MetricsWriter> writer;
  if (!o.workdir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.workdir, ec);
    if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot create --workdir ", o.workdir, ": ", ec.message()));
    absl::StatusOr<std::unique_ptr<MetricsWriter>> w = MetricsWriter::Create(o.workdir + "/metrics.jsonl");
    if (!w.ok()) return w.status();
    writer = *std::move(w);
  }
  RunResult result;
  std::vector<double> throughput;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t step = 1; step <= o.steps; ++step) {
    absl::StatusOr<StepMetrics> metrics = TrainStep(step);
    if (!metrics.ok()) return metrics.status();
    if (IsEvalStep(step, o)) {
      absl::StatusOr<double> val = Validate();
      if (!val.ok()) return val.status();
      metrics->val_loss = *val;
      result.val_curve.emplace_back(step, *val);
      result.final_val_loss = *val;
    }
    throughput.push_back(metrics->tokens_per_s);
    result.final_loss = metrics->loss;
    progress << FormatProgressLine({step, o.steps, metrics->loss, metrics->val_loss, metrics->tokens_per_s,
                                    SecondsSince(start)})
             << std::endl;
    if (writer) {
      if (absl::Status s = writer->Append(*metrics); !s.ok()) return s;
    }
  }
  result.steps = o.steps;
  result.median_tokens_per_s = Median(throughput);
  absl::StatusOr<std::string> checksum = ParamChecksumHex();
  if (!checksum.ok()) return checksum.status();
  result.param_checksum = *checksum;
  if (absl::Status s = ReportRunEnd(result, o.workdir, std::nullopt, std::nullopt, progress); !s.ok()) return s;
  return result;
}

absl::Status ReportRunEnd(const RunResult& result, const std::string& workdir, std::optional<int> hosts,
                          std::optional<int> trainers, std::ostream& progress) {
  progress << "param_checksum " << result.param_checksum << std::endl;
  if (workdir.empty()) return absl::OkStatus();
  RunSummary summary;
  summary.steps = result.steps;
  summary.final_loss = result.final_loss;
  summary.final_val_loss = result.final_val_loss;
  summary.param_checksum = result.param_checksum;
  summary.median_tokens_per_s = result.median_tokens_per_s;
  summary.hosts = hosts;
  summary.trainers = trainers;
  summary.replicated_actors = result.replicated_actors;
  summary.replica_mismatches = result.replica_mismatches;
  return WriteRunSummary(workdir + "/summary.json", summary);
}

}  // namespace sy::trainer
