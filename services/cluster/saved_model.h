// A run's saved model: DIR/model.bin (the weights, gpu/model/weights_file.h) and
// DIR/model.json (the config they belong to, model_json.h), each replaced atomically.
// The trainer that finishes a run writes them into its workdir; sy-generate reads them
// back, checking the weights' shapes against the config and the checksums against
// each other, so a file from another run or a damaged one is refused with its name.
// Pure apart from the file system; thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gpu/model/config.h"
#include "gpu/model/weights_file.h"
#include "services/cluster/model_json.h"

namespace sy::cluster {

inline constexpr char kModelWeightsFile[] = "model.bin";
inline constexpr char kModelJsonFile[] = "model.json";

// Writes DIR/model.bin, then DIR/model.json (a crash in between leaves a pair whose
// checksums disagree, which LoadSavedModel refuses). FailedPrecondition on I/O errors.
absl::Status SaveModel(const std::string& dir, const gpu::ModelConfig& config, const gpu::Weights& weights);

// DIR/model.json alone. NotFound when absent; InvalidArgument naming the file and the problem.
absl::StatusOr<ModelDescription> ReadModelJson(const std::string& path);

struct SavedModel {
  ModelDescription description;
  gpu::Weights weights;  // checked against description.config
};

// NotFound naming the missing file; InvalidArgument for a malformed file, a shape
// mismatch or checksums that disagree; DataLoss for values that fail model.bin's checksum.
absl::StatusOr<SavedModel> LoadSavedModel(const std::string& dir);

}  // namespace sy::cluster
