// CheckpointStore over RocksDB (see checkpoint_store.h for the layout and guarantees).
#include "services/coordinator/checkpoint_store.h"

#include <algorithm>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <rocksdb/write_batch.h>

#include "absl/strings/str_cat.h"
#include "common/base/fnv1a.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "common/log/log.h"
#include "common/storage/durable_file.h"
#include "common/storage/rocksdb_util.h"

namespace sy::coordinator {
namespace {

constexpr char kManifestTag = 'm';
constexpr char kChunkTag = 'c';
// The catalog marker, a file next to RocksDB's own: "newest-committed ID".
constexpr char kCatalogMarker[] = "SWITCHYARD-CATALOG";
constexpr char kMarkerPrefix[] = "newest-committed ";

void AppendBE(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t ReadBE(absl::string_view in, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[pos + i]);
  return v;
}

absl::string_view View(const rocksdb::Slice& slice) { return absl::string_view(slice.data(), slice.size()); }

std::string ManifestKey(uint64_t id) {
  std::string key(1, kManifestTag);
  AppendBE(key, id, 8);
  return key;
}
std::string ChunkPrefix(uint64_t id) {
  std::string key(1, kChunkTag);
  AppendBE(key, id, 8);
  return key;
}
std::string ActorPrefix(uint64_t id, const cluster::ActorKey& actor) {
  std::string key = ChunkPrefix(id);
  key.push_back(actor.dense ? 1 : 0);
  AppendBE(key, actor.dense ? actor.shard : actor.switch_layer, 4);
  AppendBE(key, actor.dense ? 0 : actor.expert, 4);
  return key;
}
// The smallest key after every key starting with `prefix` (prefixes here never end in 0xff runs only).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

std::string EncodeManifest(const CheckpointInfo& info) {
  capnp::MallocMessageBuilder builder;
  InfoToProto(info, builder.initRoot<proto::checkpoint::Manifest>());
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  std::string value(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
  AppendBE(value, ChecksumOf(value), 8);
  return value;
}

absl::StatusOr<CheckpointInfo> DecodeManifest(absl::string_view value) {
  if (value.size() < 16 || (value.size() - 8) % sizeof(capnp::word) != 0) {
    return absl::DataLossError("manifest has a bad size");
  }
  const absl::string_view body = value.substr(0, value.size() - 8);
  if (ReadBE(value, body.size(), 8) != ChecksumOf(body)) {
    return absl::DataLossError("manifest checksum mismatch");
  }
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(body.size() / sizeof(capnp::word));
  std::copy(body.begin(), body.end(), reinterpret_cast<char*>(words.begin()));
  absl::StatusOr<CheckpointInfo> result = absl::DataLossError("manifest unreadable");
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = words.size() * 4 + 64;
    capnp::FlatArrayMessageReader reader(words, options);
    result = InfoFromProto(reader.getRoot<proto::checkpoint::Manifest>());
  });
  if (error != nullptr) return absl::DataLossError("manifest unreadable");
  return result;
}

}  // namespace

void InfoToProto(const CheckpointInfo& info, proto::checkpoint::Manifest::Builder out) {
  out.setCheckpointId(info.id);
  out.setStep(info.step);
  out.setCreatedUnixMs(info.created_unix_ms);
  out.setEpoch(info.epoch);
  out.setConfigHash(info.config_hash);
  out.setSeed(info.seed);
  auto actors = out.initActors(static_cast<unsigned>(info.actors.size()));
  for (size_t i = 0; i < info.actors.size(); ++i) {
    const ActorStateEntry& a = info.actors[i];
    a.actor.ToProto(actors[i].initActor());
    actors[i].setVersion(a.version);
    actors[i].setTotalBytes(a.total_bytes);
    actors[i].setChunkCount(a.chunk_count);
    actors[i].setChecksum(a.checksum);
  }
}

absl::StatusOr<CheckpointInfo> InfoFromProto(proto::checkpoint::Manifest::Reader manifest) {
  CheckpointInfo info;
  absl::Status status;
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    info.id = manifest.getCheckpointId();
    info.step = manifest.getStep();
    info.created_unix_ms = manifest.getCreatedUnixMs();
    info.epoch = manifest.getEpoch();
    info.config_hash = manifest.getConfigHash();
    info.seed = manifest.getSeed();
    for (auto a : manifest.getActors()) {
      auto key = cluster::ActorKey::FromProto(a.getActor());
      if (!key.ok()) {
        status = key.status();
        return;
      }
      info.actors.push_back({*key, a.getVersion(), a.getTotalBytes(), a.getChunkCount(), a.getChecksum()});
    }
  });
  if (error != nullptr) return absl::InvalidArgumentError("manifest unreadable");
  if (!status.ok()) return status;
  return info;
}

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

absl::StatusOr<std::string> CheckpointStore::ReadActor(uint64_t id, const ActorStateEntry& entry) const {
  const std::string name = entry.actor.ToString();
  std::string state;  // grown from what is stored: the manifest's sizes are not trusted
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = ActorPrefix(id, entry.actor);
  uint32_t chunks = 0;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->key().size() != prefix.size() + 4 || ReadBE(View(it->key()), prefix.size(), 4) != chunks) {
      return absl::DataLossError(absl::StrCat("checkpoint ", id, " actor ", name, ": chunk ", chunks, " missing"));
    }
    state.append(it->value().data(), it->value().size());
    ++chunks;
    if (state.size() > entry.total_bytes) {
      return absl::DataLossError(absl::StrCat("checkpoint ", id, " actor ", name, ": more than the ",
                                              entry.total_bytes, " bytes the manifest lists"));
    }
  }
  if (!it->status().ok()) return storage::FromRocksDb(it->status(), absl::StrCat("checkpoint ", id, " actor ", name));
  if (chunks != entry.chunk_count) {
    return absl::DataLossError(absl::StrCat("checkpoint ", id, " actor ", name, ": ", chunks,
                                            " chunks stored, manifest lists ", entry.chunk_count));
  }
  if (state.size() != entry.total_bytes) {
    return absl::DataLossError(absl::StrCat("checkpoint ", id, " actor ", name, ": ", state.size(),
                                            " bytes stored, manifest lists ", entry.total_bytes));
  }
  if (ChecksumOf(state) != entry.checksum) {
    return absl::DataLossError(absl::StrCat("checkpoint ", id, " actor ", name, ": checksum mismatch"));
  }
  return state;
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
    if (auto state = ReadActor(info.id, sorted.actors[i]); !state.ok()) return state.status();
  }
  rocksdb::WriteBatch batch;
  const std::string value = EncodeManifest(sorted);
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

absl::StatusOr<std::vector<CheckpointInfo>> CheckpointStore::List() const {
  std::vector<CheckpointInfo> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string start(1, kManifestTag);
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    auto info = DecodeManifest(View(it->value()));
    if (!info.ok()) {
      SY_LOG(WARNING) << "skipping unreadable manifest: " << info.status();
      continue;
    }
    out.push_back(*std::move(info));
  }
  if (!it->status().ok()) return storage::FromRocksDb(it->status(), "list checkpoints");
  return out;
}

absl::StatusOr<CheckpointInfo> CheckpointStore::Get(uint64_t id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ManifestKey(id), &value);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("no checkpoint ", id));
  if (!s.ok()) return storage::FromRocksDb(s, absl::StrCat("read checkpoint ", id));
  auto info = DecodeManifest(value);
  if (!info.ok()) return absl::DataLossError(absl::StrCat("checkpoint ", id, ": ", info.status().message()));
  return info;
}

absl::StatusOr<std::string> CheckpointStore::LoadActor(uint64_t id, const cluster::ActorKey& actor) const {
  auto info = Get(id);
  if (!info.ok()) return info.status();
  for (const ActorStateEntry& entry : info->actors) {
    if (entry.actor == actor) return ReadActor(id, entry);
  }
  return absl::NotFoundError(absl::StrCat("checkpoint ", id, " has no actor ", actor.ToString()));
}

absl::Status CheckpointStore::Verify(uint64_t id) const {
  auto info = Get(id);
  if (!info.ok()) return info.status();
  for (const ActorStateEntry& entry : info->actors) {
    if (auto state = ReadActor(id, entry); !state.ok()) return state.status();
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

absl::StatusOr<CheckpointInfo> CheckpointStore::LatestUsable() const {
  auto all = List();
  if (!all.ok()) return all.status();
  for (auto it = all->rbegin(); it != all->rend(); ++it) {
    absl::Status s = Verify(it->id);
    if (s.ok()) return *it;
    SY_LOG(WARNING) << "checkpoint " << it->id << " is not usable: " << s;
  }
  return absl::NotFoundError("no usable checkpoint");
}

}  // namespace sy::coordinator
