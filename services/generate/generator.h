// The trained model run forward on the CPU backend to continue a text byte by byte:
// for each new byte the whole window (the last `context` bytes) goes through
// gpu::Model::Evaluate, the model's own forward pass (no dropout, no jitter, the
// evaluation capacity factor), and the last position's logits are sampled
// (sampling.h). Not thread-safe: one thread drives one Generator.
//
//   auto g = Generator::Create(config, std::move(values)).value();
//   std::string text = g->Continue("ROMEO:", 200, /*temperature=*/0.8, /*seed=*/1).value();
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "gpu/backend.h"
#include "gpu/model/config.h"
#include "gpu/model/model.h"

namespace sy::generate {

// The context an empty prompt starts from: one newline, as if at the start of a line.
inline constexpr char kEmptyPromptContext[] = "\n";

class Generator {
 public:
  // The model of `config` on a CPU backend holding `values` (the canonical parameter
  // layout, gpu::ParamCount(gpu::ParamInfos(config)) floats). InvalidArgument for a bad
  // config or a wrong number of values.
  static absl::StatusOr<std::unique_ptr<Generator>> Create(const gpu::ModelConfig& config,
                                                           const std::vector<float>& values);

  // Logits (vocab floats) of the byte after `window` (1..context bytes as tokens).
  absl::StatusOr<std::vector<float>> NextLogits(absl::Span<const int32_t> window);

  // `tokens` bytes that continue `prompt` (kEmptyPromptContext when empty); the prompt
  // itself is not part of the result. Byte i is draw i of SamplingRng(seed).
  absl::StatusOr<std::string> Continue(absl::string_view prompt, int64_t tokens, double temperature, uint64_t seed);

  const gpu::Model& model() const { return *model_; }

 private:
  Generator() = default;
  std::unique_ptr<gpu::Backend> backend_;  // outlives the model, which allocates on it
  std::unique_ptr<gpu::Model> model_;
};

}  // namespace sy::generate
