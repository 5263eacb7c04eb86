// Windowed autoregressive sampling over gpu::Model (see generator.h).
#include "services/generate/generator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/generate/sampling.h"

namespace sy::generate {

absl::StatusOr<std::unique_ptr<Generator>> Generator::Create(const gpu::ModelConfig& config,
                                                             const std::vector<float>& values) {
  absl::StatusOr<std::unique_ptr<gpu::Backend>> backend = gpu::CreateBackend(gpu::Device::Cpu());
  if (!backend.ok()) return backend.status();
  std::unique_ptr<Generator> g(new Generator());
  g->backend_ = *std::move(backend);
  absl::StatusOr<std::unique_ptr<gpu::Model>> model = gpu::Model::Create(config, g->backend_.get(), /*seed=*/0);
  if (!model.ok()) return model.status();
  g->model_ = *std::move(model);
  if (absl::Status s = g->model_->params().CopyFromHost(values); !s.ok()) return s;
  return g;
}

absl::StatusOr<std::vector<float>> Generator::NextLogits(absl::Span<const int32_t> window) {
  const int T = static_cast<int>(window.size());
  const std::vector<int32_t> no_targets(window.size(), 0);  // Evaluate's loss is not used here
  absl::StatusOr<gpu::MicroBatchStats> stats =
      model_->Evaluate(window, no_targets, /*B=*/1, T, /*record_routing=*/false, /*record_logits=*/true);
  if (!stats.ok()) return stats.status();
  const size_t vocab = static_cast<size_t>(model_->config().vocab);
  if (stats->logits.size() != window.size() * vocab) {
    return absl::InternalError(absl::StrCat("the forward pass gave ", stats->logits.size(), " logits for ", T,
                                            " positions of ", vocab));
  }
  return std::vector<float>(stats->logits.end() - static_cast<std::ptrdiff_t>(vocab), stats->logits.end());
}

absl::StatusOr<std::string> Generator::Continue(absl::string_view prompt, int64_t tokens, double temperature,
                                                uint64_t seed) {
  const absl::string_view start = prompt.empty() ? absl::string_view(kEmptyPromptContext) : prompt;
  std::vector<int32_t> text;
  for (char c : start) {
    const int32_t byte = static_cast<unsigned char>(c);
    if (byte >= model_->config().vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("the prompt has byte ", byte, ", outside the model's vocabulary of ", model_->config().vocab));
    }
    text.push_back(byte);
  }
  const CounterRng rng = SamplingRng(seed);
  const size_t context = static_cast<size_t>(model_->config().context);
  std::string out;
  for (int64_t i = 0; i < tokens; ++i) {
    const size_t window = std::min(text.size(), context);
    absl::StatusOr<std::vector<float>> logits =
        NextLogits(absl::MakeConstSpan(text).subspan(text.size() - window, window));
    if (!logits.ok()) return logits.status();
    const int32_t next = SampleToken(*logits, temperature, rng, static_cast<uint64_t>(i));
    text.push_back(next);
    out.push_back(static_cast<char>(next));
  }
  return out;
}

}  // namespace sy::generate
