// Placement table <-> Cap'n Proto (see placement_codec.h).
#include "services/cluster/placement_codec.h"

#include <algorithm>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include "absl/strings/str_cat.h"

namespace sy::cluster {

void TableToProto(const PlacementTable& table, const std::map<std::string, std::string>& endpoints,
                  proto::coordinator::PlacementTable::Builder out) {
  out.setEpoch(table.epoch());
  out.setNumSwitchLayers(table.shape().num_switch_layers);
  out.setNumExperts(table.shape().num_experts);
  out.setNumDenseShards(table.shape().num_dense_shards);
  auto entries = out.initEntries(static_cast<unsigned>(table.entries().size()));
  unsigned i = 0;
  for (const auto& [actor, hosts] : table.entries()) {
    actor.ToProto(entries[i].initActor());
    auto replicas = entries[i].initReplicas(static_cast<unsigned>(hosts.size()));
    for (unsigned r = 0; r < hosts.size(); ++r) {
      replicas[r].setNodeId(hosts[r]);
      auto it = endpoints.find(hosts[r]);
      replicas[r].setEndpoint(it == endpoints.end() ? "" : it->second);
      replicas[r].setMicroBatchMod(r);
      replicas[r].setMicroBatchCount(static_cast<uint32_t>(hosts.size()));
    }
    ++i;
  }
  auto live = out.initLiveMoves(static_cast<unsigned>(table.live_moves().size()));
  for (unsigned k = 0; k < live.size(); ++k) {
    const LiveMove& m = table.live_moves()[k];
    m.move.actor.ToProto(live[k].initActor());
    live[k].setFrom(m.move.from);
    live[k].setTo(m.move.to);
    live[k].setLastSourceStep(m.last_source_step);
    live[k].setKeep(m.move.replicate);
  }
}

absl::StatusOr<DecodedTable> TableFromProto(proto::coordinator::PlacementTable::Reader table) {
  DecodedTable out;
  absl::Status status;
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    out.epoch = table.getEpoch();
    out.shape = {table.getNumSwitchLayers(), table.getNumExperts(), table.getNumDenseShards()};
    for (auto entry : table.getEntries()) {
      auto actor = ActorKey::FromProto(entry.getActor());
      if (!actor.ok()) {
        status = actor.status();
        return;
      }
      auto& hosts = out.entries[*actor];
      for (auto replica : entry.getReplicas()) {
        hosts.push_back(replica.getNodeId().cStr());
        if (replica.getEndpoint().size() > 0) out.endpoints[hosts.back()] = replica.getEndpoint().cStr();
      }
    }
    for (auto live : table.getLiveMoves()) {
      auto actor = ActorKey::FromProto(live.getActor());
      if (!actor.ok()) {
        status = actor.status();
        return;
      }
      out.live_moves.push_back(
          {{*actor, live.getFrom().cStr(), live.getTo().cStr(), live.getKeep()}, live.getLastSourceStep()});
    }
  });
  if (error != nullptr) return absl::InvalidArgumentError("placement table unreadable");
  if (!status.ok()) return status;
  return out;
}

std::string SerializeTable(const PlacementTable& table, const std::map<std::string, std::string>& endpoints) {
  capnp::MallocMessageBuilder builder;
  TableToProto(table, endpoints, builder.initRoot<proto::coordinator::PlacementTable>());
  auto words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

absl::StatusOr<DecodedTable> ParseTable(const std::string& bytes) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) return absl::DataLossError("saved placement has a bad size");
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(words.begin()));
  absl::StatusOr<DecodedTable> result = absl::DataLossError("saved placement unreadable");
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = words.size() * 4 + 64;
    capnp::FlatArrayMessageReader reader(words, options);
    result = TableFromProto(reader.getRoot<proto::coordinator::PlacementTable>());
  });
  if (error != nullptr) return absl::DataLossError("saved placement unreadable");
  if (!result.ok()) return absl::DataLossError(absl::StrCat("saved placement unreadable: ", result.status().message()));
  return result;
}

}  // namespace sy::cluster
