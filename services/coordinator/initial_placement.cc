// The --initial_placement file, through nlohmann-json (see
// initial_placement.h).
#include "services/coordinator/initial_placement.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sy::coordinator {
namespace {

using Json = nlohmann::json;

// One actor's holders: a non-empty array of distinct, non-empty host ids.
absl::StatusOr<std::vector<std::string>> ReadHolders(const Json& holders, const cluster::ActorKey& actor) {
  const std::string where = absl::StrCat("actor ", actor.ToString());
  if (!holders.is_array())
    return absl::InvalidArgumentError(absl::StrCat(where, ": holders must be an array of host ids"));
  if (holders.empty()) return absl::InvalidArgumentError(absl::StrCat(where, " has no holder"));
  std::vector<std::string> out;
  for (const Json& host : holders) {
    if (!host.is_string() || host.get<std::string>().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": a holder is not a non-empty host id: ", host.dump()));
    }
    const std::string id = host.get<std::string>();
    if (std::find(out.begin(), out.end(), id) != out.end()) {
      return absl::InvalidArgumentError(absl::StrCat(where, " lists host ", id, " twice"));
    }
    out.push_back(id);
  }
  return out;
}

absl::Status ReadPlacement(const Json& doc, InitialPlacement& out) {
  if (!doc.is_object()) return absl::InvalidArgumentError("the placement must be a JSON object");
  for (const auto& [key, value] : doc.items()) {
    if (key != "experts" && key != "dense") {
      return absl::InvalidArgumentError(absl::StrCat("unknown field \"", key, "\" (expected \"experts\", \"dense\")"));
    }
  }
  if (!doc.contains("experts") || !doc["experts"].is_array() || doc["experts"].empty()) {
    return absl::InvalidArgumentError(
        "\"experts\" must list the Switch layers "
        "(an array of arrays, one per layer)");
  }
  if (!doc.contains("dense") || !doc["dense"].is_array()) {
    return absl::InvalidArgumentError("\"dense\" must list the dense shards' holders (an array)");
  }
  const Json& layers = doc["experts"];
  out.shape.num_switch_layers = static_cast<uint32_t>(layers.size());
  for (size_t s = 0; s < layers.size(); ++s) {
    if (!layers[s].is_array() || layers[s].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("Switch layer ", s, " must list its experts' holders"));
    }
    if (s == 0) out.shape.num_experts = static_cast<uint32_t>(layers[0].size());
    if (layers[s].size() != out.shape.num_experts) {
      return absl::InvalidArgumentError(absl::StrCat("Switch layer ", s, " lists ", layers[s].size(),
                                                     " experts, Switch layer 0 lists ", out.shape.num_experts));
    }
    for (size_t e = 0; e < layers[s].size(); ++e) {
      const cluster::ActorKey actor = cluster::ActorKey::Expert(static_cast<uint32_t>(s), static_cast<uint32_t>(e));
      absl::StatusOr<std::vector<std::string>> holders = ReadHolders(layers[s][e], actor);
      if (!holders.ok()) return holders.status();
      out.entries[actor] = *std::move(holders);
    }
  }
  const Json& dense = doc["dense"];
  out.shape.num_dense_shards = static_cast<uint32_t>(dense.size());
  for (size_t d = 0; d < dense.size(); ++d) {
    const cluster::ActorKey actor = cluster::ActorKey::Dense(static_cast<uint32_t>(d));
    absl::StatusOr<std::vector<std::string>> holders = ReadHolders(dense[d], actor);
    if (!holders.ok()) return holders.status();
    out.entries[actor] = *std::move(holders);
  }
  for (const auto& [actor, holders] : out.entries) {
    for (const std::string& h : holders) {
      if (std::find(out.hosts.begin(), out.hosts.end(), h) == out.hosts.end()) out.hosts.push_back(h);
    }
  }
  std::sort(out.hosts.begin(), out.hosts.end(),
            [](const std::string& x, const std::string& y) { return cluster::NaturalLess(x, y); });
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<InitialPlacement> ParseInitialPlacement(const std::string& json_text) {
  const Json doc = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("not JSON");
  InitialPlacement placement;
  if (absl::Status s = ReadPlacement(doc, placement); !s.ok()) return s;
  return placement;
}

absl::StatusOr<InitialPlacement> ReadInitialPlacement(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot be opened"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot be read"));
  absl::StatusOr<InitialPlacement> placement = ParseInitialPlacement(text.str());
  if (!placement.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", placement.status().message()));
  return placement;
}

std::string InitialPlacementJson(const cluster::ModelShape& shape,
                                 const std::map<cluster::ActorKey, std::vector<std::string>>& entries) {
  auto holders = [&](const cluster::ActorKey& actor) {
    auto it = entries.find(actor);
    return it == entries.end() ? Json::array() : Json(it->second);
  };
  Json experts = Json::array();
  for (uint32_t s = 0; s < shape.num_switch_layers; ++s) {
    Json layer = Json::array();
    for (uint32_t e = 0; e < shape.num_experts; ++e) layer.push_back(holders(cluster::ActorKey::Expert(s, e)));
    experts.push_back(layer);
  }
  Json dense = Json::array();
  for (uint32_t d = 0; d < shape.num_dense_shards; ++d) dense.push_back(holders(cluster::ActorKey::Dense(d)));
  return Json{{"experts", experts}, {"dense", dense}}.dump() + "\n";
}

absl::Status PlaceInitially(const InitialPlacement& placement, const std::vector<std::string>& alive_hosts,
                            cluster::PlacementTable& table) {
  std::vector<std::string> absent;
  for (const std::string& h : placement.hosts) {
    if (std::find(alive_hosts.begin(), alive_hosts.end(), h) == alive_hosts.end()) absent.push_back(h);
  }
  if (!absent.empty()) {
    return absl::UnavailableError(
        absl::StrCat("waiting for the hosts --initial_placement names: ", absl::StrJoin(absent, ", ")));
  }
  return table.Restore(table.epoch() + 1, placement.entries);
}

}  // namespace sy::coordinator
