// CheckpointStore: the checkpoint catalog in RocksDB.
//
// Checkpoint k = every actor's state (weights, Adam moments, version: opaque bytes
// streamed by the hosts in chunks) + the data cursor (step) + the config fingerprint.
// Chunks are written first under keys of k; Commit then writes the manifest for k
// LAST, alone in one synced WriteBatch, listing every actor with its version, chunk
// count, byte size and checksum (common/storage/checksum.h). A checkpoint without a
// manifest does not exist: List/Get/LatestUsable never see it, and Open deletes its
// orphan chunks (only when the manifest is certainly absent: a read error stops Open
// and deletes nothing). After each commit a marker file next to the database
// (SWITCHYARD-CATALOG) records the newest committed id; Open refuses a database whose
// readable manifests stop before it (its log or RocksDB MANIFEST lost writes). After
// each commit only the newest `retain` checkpoints are kept.
// LoadActor verifies sizes and checksum: a corrupt chunk is DataLoss naming the actor;
// the caller decides what to do (LatestUsable returns the newest fully verified one).
//
// The key layout and the read side (List, Get, LoadActor, Verify, LatestUsable) are
// services/cluster/checkpoint_catalog.h, which readers outside the coordinator share.
//
// Thread-safe (RocksDB is), but meant to be driven by one actor.
//
//   auto store = CheckpointStore::Open("/tmp/db", {});
//   (*store)->PutChunk(7, ActorKey::Expert(0, 1), 0, bytes);
//   (*store)->Commit(info);   // info.actors lists every actor written above
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <rocksdb/db.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/checkpoint_catalog.h"

namespace sy::coordinator {

// The catalog's records and manifest codec live in services/cluster/checkpoint_catalog.h,
// shared with readers outside the coordinator.
using cluster::ActorStateEntry;
using cluster::CheckpointInfo;
using cluster::InfoFromProto;
using cluster::InfoToProto;

struct CheckpointStoreOptions {
  int retain = 3;               // keep the newest K committed checkpoints (>= 1)
  rocksdb::Env* env = nullptr;  // null: default (tests inject faults)
  // Tests: wraps the opened database (e.g. a rocksdb::StackableDB whose reads fail).
  std::function<std::unique_ptr<rocksdb::DB>(std::unique_ptr<rocksdb::DB>)> wrap_db_for_testing;
};

class CheckpointStore {
 public:
  // Opens or creates the database, checks the catalog marker, and deletes orphan
  // chunks (no manifest). DataLoss naming the path for a corrupt or truncated database
  // or log, or one that lost committed checkpoints; Unavailable when it is locked or
  // unreadable (nothing is deleted then); InvalidArgument for options out of range.
  static absl::StatusOr<std::unique_ptr<CheckpointStore>> Open(const std::string& path,
                                                               CheckpointStoreOptions options);

  // Stores chunk `index` of `actor`'s state for uncommitted checkpoint `id`.
  // FailedPrecondition when `id` is already committed (a checkpoint never changes).
  absl::Status PutChunk(uint64_t id, const cluster::ActorKey& actor, uint32_t index, absl::string_view bytes);
  // Verifies every listed actor's chunks (count, size, checksum), then writes the
  // manifest in one synced WriteBatch, applies retention and updates the catalog
  // marker. Nothing is committed on DataLoss naming the actor whose chunks do not
  // match, InvalidArgument for a malformed info, FailedPrecondition when `id` exists
  // already, or a failed manifest write (the storage error, Unavailable); a failure
  // after it (retention, marker) is reported too, with `id` committed.
  absl::Status Commit(const CheckpointInfo& info);
  // Deletes the chunks of an uncommitted checkpoint (a failed attempt).
  absl::Status Abandon(uint64_t id);

  // Committed checkpoints, oldest first. A manifest that fails its own checksum is
  // left out (and logged).
  absl::StatusOr<std::vector<CheckpointInfo>> List() const { return catalog_.List(); }
  // NotFound when `id` has no manifest.
  absl::StatusOr<CheckpointInfo> Get(uint64_t id) const { return catalog_.Get(id); }
  // `actor`'s state in checkpoint `id`, verified. NotFound, or DataLoss naming the actor.
  absl::StatusOr<std::string> LoadActor(uint64_t id, const cluster::ActorKey& actor) const {
    return catalog_.LoadActor(id, actor);
  }
  // Every actor of checkpoint `id` loads and verifies.
  absl::Status Verify(uint64_t id) const { return catalog_.Verify(id); }
  // The newest committed checkpoint that verifies completely; NotFound when none does.
  absl::StatusOr<CheckpointInfo> LatestUsable() const { return catalog_.LatestUsable(); }

  // Small named values of the coordinator (e.g. the placement table), written synced.
  absl::Status PutMeta(absl::string_view name, absl::string_view value);
  // NotFound when never written.
  absl::StatusOr<std::string> GetMeta(absl::string_view name) const;

  // Orphan chunks deleted by Open (diagnostics, tests).
  uint64_t orphan_chunks_collected() const { return orphans_collected_; }
  // The raw database, for tests that corrupt values on purpose.
  rocksdb::DB* raw_db_for_testing() { return db_.get(); }

  // Key of chunk `index` of `actor` in checkpoint `id` (tests corrupt it).
  static std::string ChunkKey(uint64_t id, const cluster::ActorKey& actor, uint32_t index);

 private:
  CheckpointStore(std::unique_ptr<rocksdb::DB> db, std::string path, CheckpointStoreOptions options)
      : db_(std::move(db)), path_(std::move(path)), catalog_(db_.get()), options_(std::move(options)) {}
  std::string MarkerPath() const;
  // DataLoss when the marker names a checkpoint newer than every readable manifest.
  absl::Status CheckCatalogMarker() const;
  absl::Status CollectOrphans();
  absl::Status ApplyRetention();
  absl::Status DeleteCheckpointKeys(uint64_t id, bool with_manifest);
  // Whether checkpoint `id` is committed; the read error when that cannot be told.
  absl::StatusOr<bool> HasManifest(uint64_t id) const;

  std::unique_ptr<rocksdb::DB> db_;
  std::string path_;
  cluster::CheckpointCatalog catalog_;  // the read side, over db_
  CheckpointStoreOptions options_;
  uint64_t orphans_collected_ = 0;
};

}  // namespace sy::coordinator
