// The placement table on the wire (proto coordinator.PlacementTable): replica i of n
// serves micro-batches m with m % n == i. Used for register/placement replies,
// pushed updates, and the copy the coordinator keeps in RocksDB across restarts.
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/placement_table.h"

namespace sy::cluster {

// `endpoints`: host id -> endpoint (a host missing there gets "").
void TableToProto(const PlacementTable& table, const std::map<std::string, std::string>& endpoints,
                  proto::coordinator::PlacementTable::Builder out);

struct DecodedTable {
  uint64_t epoch = 0;
  ModelShape shape;
  std::map<ActorKey, std::vector<std::string>> entries;
  std::map<std::string, std::string> endpoints;
  std::vector<LiveMove> live_moves;  // empty: the table applies at once
};
// InvalidArgument for an unreadable table.
absl::StatusOr<DecodedTable> TableFromProto(proto::coordinator::PlacementTable::Reader table);

// Flat bytes for the RocksDB copy, and back (DataLoss when unreadable).
std::string SerializeTable(const PlacementTable& table, const std::map<std::string, std::string>& endpoints);
absl::StatusOr<DecodedTable> ParseTable(const std::string& bytes);

}  // namespace sy::cluster
