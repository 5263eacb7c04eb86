// Assembling the parameter block from a checkpoint's actor states (see checkpoint_weights.h).
#include "services/generate/checkpoint_weights.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/storage/rocksdb_util.h"
#include "gpu/model/expert.h"
#include "gpu/model/params.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/checkpoint_catalog.h"
#include "services/cluster/placement.h"

namespace sy::generate {
namespace {

// Where an actor's weights go: runs of (offset in the actor's block, offset in the
// parameter layout, count).
struct Run {
  int64_t from = 0, to = 0, count = 0;
};
struct ActorSlots {
  int64_t size = 0;  // weights in the actor's block
  std::vector<Run> runs;
};

// Every actor the model of `config` has, with where its weights go.
std::map<cluster::ActorKey, ActorSlots> ExpectedActors(const gpu::ModelConfig& config,
                                                       const std::vector<gpu::ParamInfo>& infos) {
  std::map<cluster::ActorKey, ActorSlots> actors;
  const std::vector<uint32_t> shards = cluster::DenseShardParams(infos);
  for (size_t s = 0; s < shards.size(); ++s) {
    const gpu::ParamInfo& info = infos[shards[s]];
    actors[cluster::ActorKey::Dense(static_cast<uint32_t>(s))] = {info.numel, {{0, info.offset, info.numel}}};
  }
  const gpu::ExpertLayout layout(config);
  uint32_t switch_index = 0;
  for (int l = 0; l < config.layers; ++l) {
    if (!config.IsSwitchLayer(l)) continue;
    for (int e = 0; e < config.experts; ++e) {
      ActorSlots& slots = actors[cluster::ActorKey::Expert(switch_index, static_cast<uint32_t>(e))];
      slots.size = layout.size();
      for (const gpu::ExpertPart& part : layout.parts()) {
        const std::string name = absl::StrCat("layer", l, ".", part.name);
        auto info = std::find_if(infos.begin(), infos.end(), [&](const gpu::ParamInfo& i) { return i.name == name; });
        // ExpertLayout's parts are parameters of every Switch layer, so `info` exists.
        slots.runs.push_back({part.offset, info->offset + e * part.numel, part.numel});
      }
    }
    ++switch_index;
  }
  return actors;
}

absl::Status ShapeMismatch(uint64_t id, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("shape mismatch: checkpoint ", id, " ", what));
}

}  // namespace

absl::StatusOr<CheckpointWeights> ReadCheckpointWeights(const std::string& db_path, const gpu::ModelConfig& config) {
  storage::OpenOptions open;
  open.read_only = true;
  absl::StatusOr<std::unique_ptr<rocksdb::DB>> db = storage::OpenDb(db_path, open);
  if (!db.ok()) return db.status();
  const cluster::CheckpointCatalog catalog(db->get());
  absl::StatusOr<cluster::CheckpointInfo> info = catalog.LatestUsable();
  if (!info.ok()) {
    return absl::Status(info.status().code(), absl::StrCat(db_path, ": ", info.status().message()));
  }
  const std::vector<gpu::ParamInfo> infos = gpu::ParamInfos(config);
  std::map<cluster::ActorKey, ActorSlots> expected = ExpectedActors(config, infos);
  CheckpointWeights out{info->id, info->step, std::vector<float>(static_cast<size_t>(gpu::ParamCount(infos)))};
  for (const cluster::ActorStateEntry& entry : info->actors) {
    auto slots = expected.find(entry.actor);
    if (slots == expected.end()) {
      return ShapeMismatch(info->id, absl::StrCat("holds actor ", entry.actor.ToString(), ", which the model lacks"));
    }
    const uint64_t state_bytes = 3 * static_cast<uint64_t>(slots->second.size) * sizeof(float);
    if (entry.total_bytes != state_bytes) {
      return ShapeMismatch(info->id, absl::StrCat("actor ", entry.actor.ToString(), " holds ", entry.total_bytes,
                                                  " bytes of state, the model needs ", state_bytes, " (weights, m and v of ",
                                                  slots->second.size, " values)"));
    }
    absl::StatusOr<std::string> state = catalog.ReadActor(info->id, entry);
    if (!state.ok()) return state.status();
    for (const Run& run : slots->second.runs) {
      std::memcpy(out.values.data() + run.to, state->data() + run.from * sizeof(float), run.count * sizeof(float));
    }
    expected.erase(slots);
  }
  if (!expected.empty()) {
    return ShapeMismatch(info->id, absl::StrCat("has no actor ", expected.begin()->first.ToString(), " (",
                                                expected.size(), " of the model's actors missing)"));
  }
  return out;
}

}  // namespace sy::generate
