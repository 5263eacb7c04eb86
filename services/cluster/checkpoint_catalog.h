// The read side of the coordinator's checkpoint catalog in RocksDB, shared by the
// coordinator's CheckpointStore (which adds the writes: chunks, commits, retention) and
// by readers outside it (sy-generate samples from the latest checkpoint's weights).
//
// Checkpoint k = every actor's state (weights, Adam moments: opaque bytes streamed by
// the hosts in chunks) + the data cursor (step) + the config fingerprint, under the
// manifest that is written LAST; a checkpoint without a manifest does not exist.
//
// Key layout (big-endian numbers, so keys sort by id):
//   'm' id                         -> manifest (proto checkpoint.Manifest, then its FNV-1a 64)
//   'c' id kind a b index          -> chunk bytes (kind 0: expert (switch_layer, expert); 1: dense shard)
//   'x' name                       -> coordinator metadata
//
// CheckpointCatalog reads a database it does not own; RocksDB makes it thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <rocksdb/db.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/checkpoint.capnp.h"
#include "services/cluster/actor_key.h"

namespace sy::cluster {

struct ActorStateEntry {
  ActorKey actor;
  uint64_t version = 0;      // actor version (== step)
  uint64_t total_bytes = 0;  // size of the serialized state
  uint32_t chunk_count = 0;  // chunks 0..count-1 stored
  uint64_t checksum = 0;     // ChecksumOf(state)
};

struct CheckpointInfo {
  uint64_t id = 0;           // > 0, increasing
  uint64_t step = 0;         // data cursor: the step boundary the state belongs to
  int64_t created_unix_ms = 0;
  uint64_t epoch = 0;        // placement epoch when taken
  uint64_t config_hash = 0;  // fingerprint of the model/training config
  uint64_t seed = 0;
  std::vector<ActorStateEntry> actors;  // every actor of the model, sorted by key
};

// The manifest on the wire and on disk is proto checkpoint.Manifest.
void InfoToProto(const CheckpointInfo& info, proto::checkpoint::Manifest::Builder out);
absl::StatusOr<CheckpointInfo> InfoFromProto(proto::checkpoint::Manifest::Reader manifest);

// The key layout above, for the writer.
namespace checkpoint_keys {
inline constexpr char kManifestTag = 'm';
inline constexpr char kChunkTag = 'c';
void AppendBE(std::string& out, uint64_t v, int bytes);
uint64_t ReadBE(absl::string_view in, size_t pos, int bytes);
std::string ManifestKey(uint64_t id);
std::string ChunkPrefix(uint64_t id);
std::string ActorPrefix(uint64_t id, const ActorKey& actor);
// The manifest value: the proto, then its FNV-1a 64.
std::string EncodeManifest(const CheckpointInfo& info);
}  // namespace checkpoint_keys

class CheckpointCatalog {
 public:
  // `db` must outlive the catalog.
  explicit CheckpointCatalog(rocksdb::DB* db) : db_(db) {}

  // Committed checkpoints, oldest first. A manifest that fails its own checksum is
  // left out (and logged).
  absl::StatusOr<std::vector<CheckpointInfo>> List() const;
  // NotFound when `id` has no manifest; DataLoss for a damaged one.
  absl::StatusOr<CheckpointInfo> Get(uint64_t id) const;
  // The state of `entry`'s actor in checkpoint `id`, verified against the manifest's
  // chunk count, size and checksum: DataLoss naming the actor otherwise.
  absl::StatusOr<std::string> ReadActor(uint64_t id, const ActorStateEntry& entry) const;
  // `actor`'s state in checkpoint `id`, verified. NotFound, or DataLoss naming the actor.
  absl::StatusOr<std::string> LoadActor(uint64_t id, const ActorKey& actor) const;
  // Every actor of checkpoint `id` loads and verifies.
  absl::Status Verify(uint64_t id) const;
  // The newest committed checkpoint that verifies completely; NotFound when none does.
  absl::StatusOr<CheckpointInfo> LatestUsable() const;

 private:
  rocksdb::DB* db_;
};

}  // namespace sy::cluster
