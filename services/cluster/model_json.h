// model.json: the description written beside a saved model's weights (model.bin): the
// model configuration (every gpu::ModelConfig field), the parameters' version (step),
// their count and checksum. A reader builds the model from the config and checks the
// weights against it before using them. Pure functions; thread-safe.
//
//   {"format":"switchyard-model","version":1,"step":30,"param_count":123456,
//    "param_checksum":"278a109c7fdac0c7","config":{"vocab":256,"layers":4,...}}
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gpu/model/config.h"

namespace sy::cluster {

struct ModelDescription {
  gpu::ModelConfig config;
  uint64_t step = 0;
  int64_t param_count = 0;
  std::string param_checksum;  // 16 hex digits (services/cluster/param_checksum.h)
};

std::string ModelJson(const ModelDescription& description);

// InvalidArgument naming the problem: not JSON, another format or version, a field
// missing or of the wrong type, or a config that gpu::ModelConfig::Validate refuses.
absl::StatusOr<ModelDescription> ParseModelJson(absl::string_view text);

}  // namespace sy::cluster
