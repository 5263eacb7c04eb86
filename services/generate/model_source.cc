// Run directory or checkpoint database (see model_source.h).
#include "services/generate/model_source.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/cluster/saved_model.h"
#include "services/generate/checkpoint_weights.h"

namespace sy::generate {
namespace {

namespace fs = std::filesystem;

bool Exists(const fs::path& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

absl::StatusOr<LoadedModel> FromRunDirectory(const std::string& dir) {
  absl::StatusOr<cluster::SavedModel> saved = cluster::LoadSavedModel(dir);
  if (!saved.ok()) return saved.status();
  LoadedModel m{saved->description.config, saved->weights.step, std::move(saved->weights.values), ""};
  m.description = absl::StrCat(dir, "/", cluster::kModelWeightsFile, " (step ", m.step, ", checksum ",
                               saved->description.param_checksum, ")");
  return m;
}

absl::StatusOr<LoadedModel> FromDatabase(const std::string& db, std::string model_config) {
  if (model_config.empty()) model_config = (fs::path(db).lexically_normal().parent_path() / cluster::kModelJsonFile).string();
  absl::StatusOr<cluster::ModelDescription> d = cluster::ReadModelJson(model_config);
  if (d.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat(d.status().message(), ": the checkpoint database ", db,
                                            " holds no model config; name the run's model.json with --model_config"));
  }
  if (!d.ok()) return d.status();
  absl::StatusOr<CheckpointWeights> weights = ReadCheckpointWeights(db, d->config);
  if (!weights.ok()) return weights.status();
  LoadedModel m{d->config, weights->step, std::move(weights->values), ""};
  m.description = absl::StrCat(db, " checkpoint ", weights->checkpoint_id, " (step ", m.step, ", config ",
                               model_config, ")");
  return m;
}

}  // namespace

absl::StatusOr<LoadedModel> LoadModel(const std::string& checkpoint, const std::string& model_config) {
  const fs::path dir(checkpoint);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("--checkpoint=", checkpoint, ": no such directory"));
  }
  if (Exists(dir / cluster::kModelWeightsFile) || Exists(dir / cluster::kModelJsonFile)) {
    return FromRunDirectory(checkpoint);
  }
  if (Exists(dir / "CURRENT")) return FromDatabase(checkpoint, model_config);
  return absl::NotFoundError(absl::StrCat("--checkpoint=", checkpoint, " is neither a run directory (",
                                          cluster::kModelJsonFile, ", ", cluster::kModelWeightsFile,
                                          ") nor a coordinator's checkpoint database"));
}

}  // namespace sy::generate
