// What --checkpoint names, resolved to a model config and its weights: a run's
// directory (model.json + model.bin, services/cluster/saved_model.h) or a
// coordinator's checkpoint database (checkpoint_weights.h), whose model config comes
// from a model.json: --model_config, or else the one in the database's parent
// directory (sy-local keeps coordinator.db inside the run's workdir). Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gpu/model/config.h"

namespace sy::generate {

struct LoadedModel {
  gpu::ModelConfig config;
  uint64_t step = 0;          // the weights' version
  std::vector<float> values;  // canonical parameter layout
  std::string description;    // where they came from, for the user
};

// `checkpoint`: a directory. `model_config`: a model.json path, used for a database only
// ("" = the parent directory's). NotFound, InvalidArgument or DataLoss naming the
// file or database and the problem.
absl::StatusOr<LoadedModel> LoadModel(const std::string& checkpoint, const std::string& model_config);

}  // namespace sy::generate
