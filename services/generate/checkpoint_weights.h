// The model's weights out of a coordinator's checkpoint database: the latest committed
// checkpoint that verifies, each actor's state (weights, then the two AdamW moments)
// cut to its weights and put where the canonical parameter layout has them, dense
// shards as whole parameters and experts as their slices of the stacked expert
// tensors (gpu::ExpertLayout). The database holds no model config, so the caller
// supplies it; every actor is checked against it. Reads only (the database may belong
// to a running coordinator). Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gpu/model/config.h"

namespace sy::generate {

struct CheckpointWeights {
  uint64_t checkpoint_id = 0;
  uint64_t step = 0;
  std::vector<float> values;  // canonical layout of the config's parameters
};

// NotFound for a path without a database or a database without a usable checkpoint;
// DataLoss for a damaged database; InvalidArgument ("shape mismatch: ...") when the
// checkpoint's actors are not those of `config` or their states have another size.
absl::StatusOr<CheckpointWeights> ReadCheckpointWeights(const std::string& db_path, const gpu::ModelConfig& config);

}  // namespace sy::generate
