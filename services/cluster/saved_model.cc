// Writing and reading a run's model.bin + model.json (see saved_model.h).
#include "services/cluster/saved_model.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gpu/model/params.h"
#include "services/cluster/atomic_file.h"
#include "services/cluster/param_checksum.h"

namespace sy::cluster {
namespace {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": no such file (or it cannot be read)"));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return bytes.str();
}

// `status` with `path` in front of its message, same code.
absl::Status Named(const std::string& path, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
}

}  // namespace

absl::Status SaveModel(const std::string& dir, const gpu::ModelConfig& config, const gpu::Weights& weights) {
  ModelDescription d;
  d.config = config;
  d.step = weights.step;
  d.param_count = static_cast<int64_t>(weights.values.size());
  d.param_checksum = ChecksumHex(weights.checksum);
  if (absl::Status s = WriteFileAtomically(dir + "/" + kModelWeightsFile, gpu::SerializeWeights(weights)); !s.ok()) {
    return s;
  }
  return WriteFileAtomically(dir + "/" + kModelJsonFile, ModelJson(d));
}

absl::StatusOr<ModelDescription> ReadModelJson(const std::string& path) {
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<ModelDescription> d = ParseModelJson(*text);
  if (!d.ok()) return Named(path, d.status());
  return d;
}

absl::StatusOr<SavedModel> LoadSavedModel(const std::string& dir) {
  const std::string json_path = dir + "/" + kModelJsonFile, bin_path = dir + "/" + kModelWeightsFile;
  absl::StatusOr<ModelDescription> d = ReadModelJson(json_path);
  if (!d.ok()) return d.status();
  absl::StatusOr<std::string> bytes = ReadWholeFile(bin_path);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<gpu::Weights> weights = gpu::ParseWeights(*bytes);
  if (!weights.ok()) return Named(bin_path, weights.status());
  if (absl::Status s = gpu::CheckWeightsFit(*weights, gpu::ParamInfos(d->config)); !s.ok()) {
    return Named(bin_path, absl::InvalidArgumentError(absl::StrCat(s.message(), " (the config in ", json_path, ")")));
  }
  if (ChecksumHex(weights->checksum) != d->param_checksum || weights->step != d->step) {
    return absl::InvalidArgumentError(absl::StrCat(bin_path, " (step ", weights->step, ", checksum ",
                                                   ChecksumHex(weights->checksum), ") is not the model ", json_path,
                                                   " describes (step ", d->step, ", checksum ", d->param_checksum,
                                                   ")"));
  }
  return SavedModel{*std::move(d), *std::move(weights)};
}

}  // namespace sy::cluster
