// The placement table: every expert (switch_layer, e) and dense shard -> the host(s) that
// serve it, with an epoch that grows on every change. Replicas of one actor split
// the micro-batches: replica i of n serves micro-batches m with m % n == i.
//
// Initial placement is the static round-robin rule of the data path, as a
// pure function (InitialHostIndex): expert global index g = switch_layer *
// num_experts + expert goes to host g % H; dense shard s goes to host s % H; hosts in the order
// given (the coordinator orders hosts by NaturalLess on their node ids).
//
// Changes: RemoveHost (failure) and DrainHost spread the host's actors over the
// others, least loaded (fewest actors) first; AddHost (join) moves actors from the
// most loaded hosts to the new one until the counts differ by at most one; Apply
// installs the moves of a rebalance plan. Each returns the moves made and bumps the
// epoch when there is at least one.
//
// Not thread-safe: owned by the coordinator's state actor.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "services/cluster/actor_key.h"

namespace sy::cluster {

struct ModelShape {
  uint32_t num_switch_layers = 0;  // Switch layers (ActorKey.switch_layer is below it)
  uint32_t num_experts = 0;        // experts per Switch layer
  uint32_t num_dense_shards = 0;   // dense parameter shards
  std::vector<ActorKey> Actors() const;  // every actor, in key order
};

// One placement change: `actor` moves from `from` to `to`, or (replicate) gains a
// replica on `to` while `from` keeps it. `from` is "" for a brand-new placement.
struct Move {
  ActorKey actor;
  std::string from;
  std::string to;
  bool replicate = false;
  bool operator==(const Move& o) const {
    return actor == o.actor && from == o.from && to == o.to && replicate == o.replicate;
  }
};

// A move that happens live (see PlacementTable::MarkLive): `move.from` serves the actor
// up to step last_source_step and then streams its state at that version to `move.to`,
// which serves it from the step after.
struct LiveMove {
  Move move;
  uint64_t last_source_step = 0;
  bool operator==(const LiveMove& o) const { return move == o.move && last_source_step == o.last_source_step; }
};

// "host-2" < "host-10": names compared with digit runs as numbers.
bool NaturalLess(absl::string_view a, absl::string_view b);

// The static rule: index into the host list of `actor`'s host (see the file comment).
size_t InitialHostIndex(const ActorKey& actor, const ModelShape& shape, size_t num_hosts);

class PlacementTable {
 public:
  // `redundancy`: holders per actor that Initialize places (on distinct hosts, as far as
  // there are hosts).
  explicit PlacementTable(ModelShape shape, size_t redundancy = 1) : shape_(shape), redundancy_(redundancy) {}

  // Places every actor by InitialHostIndex over `hosts` (in that order), replacing
  // whatever was there; with redundancy r, also on the r - 1 hosts after that one
  // (cyclically). FailedPrecondition without hosts.
  absl::Status Initialize(const std::vector<std::string>& hosts);
  // Restores a saved table (coordinator restart). InvalidArgument when an actor of
  // the shape is missing or unknown.
  absl::Status Restore(uint64_t epoch, std::map<ActorKey, std::vector<std::string>> entries);

  std::vector<Move> AddHost(const std::string& host);
  std::vector<Move> RemoveHost(const std::string& host);
  std::vector<Move> DrainHost(const std::string& host) { return RemoveHost(host); }
  // Installs planned moves; InvalidArgument (and no change) when one does not fit the table.
  absl::Status Apply(const std::vector<Move>& moves);

  // A new epoch without a placement change (e.g. after a restore, so requests from
  // before it are refused). Every change of the table goes through it.
  void BumpEpoch() {
    ++epoch_;
    live_moves_.clear();
  }
  // The moves that made the current epoch (a change just made) happen live, after step
  // `last_source_step`; the table's next change forgets them, as does ForgetLiveMoves.
  void MarkLive(const std::vector<Move>& moves, uint64_t last_source_step);
  void ForgetLiveMoves() { live_moves_.clear(); }
  const std::vector<LiveMove>& live_moves() const { return live_moves_; }

  // OK when `request_epoch` is current; Aborted with the current epoch in the
  // transport::kCurrentEpochPayload payload when it is older (the caller refreshes
  // its table and resends); FailedPrecondition when it is from the future.
  absl::Status CheckEpoch(uint64_t request_epoch) const;

  bool initialized() const { return !entries_.empty(); }
  uint64_t epoch() const { return epoch_; }
  const ModelShape& shape() const { return shape_; }
  size_t redundancy() const { return redundancy_; }
  const std::map<ActorKey, std::vector<std::string>>& entries() const { return entries_; }
  // Hosts serving `actor` (empty when unknown).
  std::vector<std::string> HostsOf(const ActorKey& actor) const;
  // Actors on `host`, in key order.
  std::vector<ActorKey> ActorsOn(const std::string& host) const;
  // Every host that serves at least one actor, or was added, in NaturalLess order.
  const std::vector<std::string>& hosts() const { return hosts_; }

 private:
  std::map<std::string, size_t> ActorCounts() const;

  ModelShape shape_;
  size_t redundancy_ = 1;
  uint64_t epoch_ = 0;
  std::map<ActorKey, std::vector<std::string>> entries_;
  std::vector<std::string> hosts_;  // eligible hosts, NaturalLess order
  std::vector<LiveMove> live_moves_;  // how the current epoch came about, when live
};

// The epoch carried by a status from CheckEpoch (0 when absent).
uint64_t CurrentEpochFrom(const absl::Status& status);

}  // namespace sy::cluster
