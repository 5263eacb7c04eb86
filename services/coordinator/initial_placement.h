// A placement given in full (sy-coordinator --initial_placement=FILE), used
// instead of the static rule when the coordinator places a cluster for the
// first time: to start a run from a known placement, e.g. the balanced one a
// benchmark compares automatic rebalancing with. The file is JSON, every
// actor's holders by host id:
//
//   {"experts": [[["host-0"], ["host-1", "host-2"]],    <- Switch layer 0:
//   expert 0, expert 1
//                [["host-2"], ["host-3"]]],             <- Switch layer 1
//    "dense":   [["host-0"], ["host-1"], ["host-3"]]}   <- dense shard 0, 1, 2
//
// Every Switch layer lists the same number of experts; every actor has at least
// one holder and no host twice. The file's shape is the model's: the
// coordinator refuses a node whose model differs, and places once every host
// the file names has registered. Pure functions; thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/cluster/placement_table.h"

namespace sy::coordinator {

struct InitialPlacement {
  cluster::ModelShape shape;                                      // implied by the file's lists
  std::map<cluster::ActorKey, std::vector<std::string>> entries;  // every actor of `shape` -> its holders
  std::vector<std::string> hosts;                                 // the distinct hosts named, NaturalLess order
};

// Parses the JSON text of a placement file; InvalidArgument saying what is
// wrong (not JSON, a missing or unknown field, a layer with another number of
// experts, an actor without holders, a host twice for one actor, an empty host
// id).
absl::StatusOr<InitialPlacement> ParseInitialPlacement(const std::string& json_text);
// Reads and parses the file at `path`; InvalidArgument naming the path when it
// cannot be read or parsed.
absl::StatusOr<InitialPlacement> ReadInitialPlacement(const std::string& path);
// The JSON text of `entries` (every actor of `shape`), as ParseInitialPlacement
// reads it.
std::string InitialPlacementJson(const cluster::ModelShape& shape,
                                 const std::map<cluster::ActorKey, std::vector<std::string>>& entries);

// Places `placement` into `table` (a new epoch) once every host it names is
// among `alive_hosts`: Unavailable naming the hosts still absent (try again
// later), or Restore's error when the placement does not fit the table's shape.
absl::Status PlaceInitially(const InitialPlacement& placement, const std::vector<std::string>& alive_hosts,
                            cluster::PlacementTable& table);

}  // namespace sy::coordinator
