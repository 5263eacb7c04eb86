// CheckpointStore over RocksDB (see checkpoint_store.h for the layout and guarantees).
#include "services/coordinator/checkpoint_store.h"

#include <algorithm>

#include <rocksdb/write_batch.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log/log.h"
#include "common/storage/durable_file.h"
#include "common/storage/rocksdb_util.h"

namespace sy::coordinator {
namespace {

using cluster::checkpoint_keys::ActorPrefix;
using cluster::checkpoint_keys::AppendBE;
using cluster::checkpoint_keys::ChunkPrefix;
using cluster::checkpoint_keys::kChunkTag;
using cluster::checkpoint_keys::kManifestTag;
using cluster::checkpoint_keys::ManifestKey;
using cluster::checkpoint_keys::ReadBE;

// The catalog marker, a file next to RocksDB's own: "newest-committed ID".
constexpr char kCatalogMarker[] = "SWITCHYARD-CATALOG";
constexpr char kMarkerPrefix[] = "newest-committed ";

absl::string_view View(const rocksdb::Slice& slice) { return absl::string_view(slice.data(), slice.size()); }

// The smallest key after every key starting with `prefix` (prefixes here never end in 0xff runs only).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CheckpointStore>> CheckpointStore::Open(const std::string& path,
                                                                       CheckpointStoreOptions options) {
  if (options.retain < 1) {
    return absl::InvalidArgumentError(absl::StrCat("retain must be >= 1, got ", options.retain));
  }
  storage::OpenOptions open;
  open.env = options.env;
  auto db = storage::OpenDb(path, open);
  if (!db.ok()) return db.status();
  std::unique_ptr<rocksdb::DB> opened = *std::move(db);
  if (options.wrap_db_for_testing) opened = options.wrap_db_for_testing(std::move(opened));
  std::unique_ptr<CheckpointStore> store(new CheckpointStore(std::move(opened), path, options));
  // Checked before anything is deleted: a database that lost commits changes nothing.
  if (absl::Status s = store->CheckCatalogMarker(); !s.ok()) return s;
  if (absl::Status s = store->CollectOrphans(); !s.ok()) return s;
  return store;
}

std::string CheckpointStore::MarkerPath() const { return absl::StrCat(path_, "/", kCatalogMarker); }

absl::Status CheckpointStore::CheckCatalogMarker() const {
  auto marker = storage::ReadSmallFile(MarkerPath());
  if (absl::IsNotFound(marker.status())) return absl::OkStatus();  // nothing committed yet (or an older database)
  if (!marker.ok()) return marker.status();
  absl::string_view text = absl::StripSuffix(*marker, "\n");
  uint64_t marked = 0;
  if (!absl::ConsumePrefix(&text, kMarkerPrefix) || !absl::SimpleAtoi(text, &marked)) {
    return absl::DataLossError(absl::StrCat("catalog marker '", MarkerPath(), "' is unreadable: '", *marker, "'"));
  }
  auto list = List();
  if (!list.ok()) return list.status();
  const uint64_t newest = list->empty() ? 0 : list->back().id;
  if (newest >= marked) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(
      "database '", path_, "' lost committed checkpoint ", marked, " (the newest readable is ",
      newest == 0 ? std::string("none") : absl::StrCat(newest), "): its log or MANIFEST lost writes; "
      "refusing to start (restore the directory from a backup, or move it away to start empty)"));
}

absl::StatusOr<bool> CheckpointStore::HasManifest(uint64_t id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ManifestKey(id), &value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return storage::FromRocksDb(s, absl::StrCat("read the manifest of checkpoint ", id));
  return true;
}

std::string CheckpointStore::ChunkKey(uint64_t id, const cluster::ActorKey& actor, uint32_t index) {
  std::string key = ActorPrefix(id, actor);
  AppendBE(key, index, 4);
  return key;
}

absl::Status CheckpointStore::PutChunk(uint64_t id, const cluster::ActorKey& actor, uint32_t index,
                                       absl::string_view bytes) {
  if (id == 0) return absl::InvalidArgumentError("checkpoint id 0 is reserved for 'none'");
  absl::StatusOr<bool> committed = HasManifest(id);
  if (!committed.ok()) return committed.status();
  if (*committed) {
    return absl::FailedPreconditionError(absl::StrCat("checkpoint ", id, " is committed; chunks cannot change"));
  }
  rocksdb::Status s = db_->Put(rocksdb::WriteOptions(), ChunkKey(id, actor, index),
                               rocksdb::Slice(bytes.data(), bytes.size()));
  return storage::FromRocksDb(s, absl::StrCat("checkpoint ", id, " actor ", actor.ToString(), " chunk ", index));
}

absl::Status CheckpointStore::Commit(const CheckpointInfo& info) {
  if (info.id == 0) return absl::InvalidArgumentError("checkpoint id 0 is reserved for 'none'");
  if (info.actors.empty()) return absl::InvalidArgumentError("a checkpoint needs at least one actor");
  absl::StatusOr<bool> committed = HasManifest(info.id);
  if (!committed.ok()) return committed.status();
  if (*committed) {
    return absl::FailedPreconditionError(absl::StrCat("checkpoint ", info.id, " is already committed"));
  }
  CheckpointInfo sorted = info;
  std::sort(sorted.actors.begin(), sorted.actors.end(),
            [](const ActorStateEntry& a, const ActorStateEntry& b) { return a.actor < b.actor; });
  for (size_t i = 0; i < sorted.actors.size(); ++i) {
    if (i > 0 && sorted.actors[i].actor == sorted.actors[i - 1].actor) {
      return absl::InvalidArgumentError(absl::StrCat("actor ", sorted.actors[i].actor.ToString(), " listed twice"));
    }
    if (auto state = catalog_.ReadActor(info.id, sorted.actors[i]); !state.ok()) return state.status();
  }
  rocksdb::WriteBatch batch;
  const std::string value = cluster::checkpoint_keys::EncodeManifest(sorted);
  batch.Put(ManifestKey(info.id), value);
  rocksdb::WriteOptions sync;
  sync.sync = true;  // syncing the WAL also makes every earlier chunk write durable
  if (absl::Status s = storage::FromRocksDb(db_->Write(sync, &batch), absl::StrCat("commit checkpoint ", info.id));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ApplyRetention(); !s.ok()) return s;
  return storage::WriteFileDurably(MarkerPath(), absl::StrCat(kMarkerPrefix, info.id, "\n"));
}

absl::Status CheckpointStore::DeleteCheckpointKeys(uint64_t id, bool with_manifest) {
  rocksdb::WriteBatch batch;
  if (with_manifest) batch.Delete(ManifestKey(id));  // first: the checkpoint stops existing
  const std::string prefix = ChunkPrefix(id);
  batch.DeleteRange(prefix, PrefixEnd(prefix));
  return storage::FromRocksDb(db_->Write(rocksdb::WriteOptions(), &batch), absl::StrCat("delete checkpoint ", id));
}

absl::Status CheckpointStore::Abandon(uint64_t id) {
  absl::StatusOr<bool> committed = HasManifest(id);
  if (!committed.ok()) return committed.status();
  if (*committed) {
    return absl::FailedPreconditionError(absl::StrCat("checkpoint ", id, " is committed; not abandoned"));
  }
  return DeleteCheckpointKeys(id, /*with_manifest=*/false);
}

absl::Status CheckpointStore::ApplyRetention() {
  std::vector<uint64_t> ids;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string start(1, kManifestTag);
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    if (it->key().size() == 9) ids.push_back(ReadBE(View(it->key()), 1, 8));
  }
  if (!it->status().ok()) return storage::FromRocksDb(it->status(), "list manifests");
  for (size_t i = 0; i + options_.retain < ids.size(); ++i) {
    if (absl::Status s = DeleteCheckpointKeys(ids[i], /*with_manifest=*/true); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckpointStore::CollectOrphans() {
  std::vector<uint64_t> orphan_ids;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string start(1, kChunkTag);
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    if (it->key().size() < 9) continue;
    const uint64_t id = ReadBE(View(it->key()), 1, 8);
    // Only a manifest that is certainly absent makes chunks orphans: a read error stops the start.
    absl::StatusOr<bool> committed = HasManifest(id);
    if (!committed.ok()) return committed.status();
    if (*committed) {
      it->Seek(PrefixEnd(ChunkPrefix(id)));  // skip this checkpoint's chunks
      if (!it->Valid()) break;
      it->Prev();
      continue;
    }
    orphan_ids.push_back(id);
    ++orphans_collected_;
  }
  if (!it->status().ok()) return storage::FromRocksDb(it->status(), "scan checkpoint chunks");
  std::sort(orphan_ids.begin(), orphan_ids.end());
  orphan_ids.erase(std::unique(orphan_ids.begin(), orphan_ids.end()), orphan_ids.end());
  for (uint64_t id : orphan_ids) {
    SY_LOG(WARNING) << "checkpoint " << id << " has no manifest (interrupted): deleting its chunks";
    if (absl::Status s = DeleteCheckpointKeys(id, /*with_manifest=*/false); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckpointStore::PutMeta(absl::string_view name, absl::string_view value) {
  rocksdb::WriteOptions sync;
  sync.sync = true;
  const std::string key = absl::StrCat("x", name);
  return storage::FromRocksDb(db_->Put(sync, key, rocksdb::Slice(value.data(), value.size())),
                              absl::StrCat("write metadata '", name, "'"));
}

absl::StatusOr<std::string> CheckpointStore::GetMeta(absl::string_view name) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), absl::StrCat("x", name), &value);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("no metadata '", name, "'"));
  if (!s.ok()) return storage::FromRocksDb(s, absl::StrCat("read metadata '", name, "'"));
  return value;
}

}  // namespace sy::coordinator
