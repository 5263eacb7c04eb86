// BackwardStages (see grad_stages.h): groups ParamInfos by the names that say where
// each parameter sits (params.cc).
#include "gpu/model/grad_stages.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sy::gpu {

std::vector<std::vector<uint32_t>> BackwardStages(const ModelConfig& config) {
  const std::vector<ParamInfo> infos = ParamInfos(config);
  std::vector<std::vector<uint32_t>> stages(static_cast<size_t>(config.layers) + 2);
  for (uint32_t i = 0; i < infos.size(); ++i) {
    const std::string& name = infos[i].name;
    size_t stage = stages.size() - 1;  // the embeddings, and anything not named by a layer
    if (absl::StartsWith(name, "lnf")) {
      stage = 0;
    } else {
      for (int l = 0; l < config.layers; ++l) {
        if (absl::StartsWith(name, absl::StrCat("layer", l, "."))) stage = static_cast<size_t>(config.layers - l);
      }
    }
    stages[stage].push_back(i);
  }
  return stages;
}

}  // namespace sy::gpu
