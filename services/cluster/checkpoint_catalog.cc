// Reading the checkpoint catalog (see checkpoint_catalog.h): keys, manifests and
// verified actor states.
#include "services/cluster/checkpoint_catalog.h"

#include <algorithm>
#include <memory>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include "absl/strings/str_cat.h"
#include "common/base/fnv1a.h"
#include "common/log/log.h"
#include "common/storage/rocksdb_util.h"

namespace sy::cluster {
namespace checkpoint_keys {

void AppendBE(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t ReadBE(absl::string_view in, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[pos + i]);
  return v;
}

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
std::string ActorPrefix(uint64_t id, const ActorKey& actor) {
  std::string key = ChunkPrefix(id);
  key.push_back(actor.dense ? 1 : 0);
  AppendBE(key, actor.dense ? actor.shard : actor.switch_layer, 4);
  AppendBE(key, actor.dense ? 0 : actor.expert, 4);
  return key;
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

}  // namespace checkpoint_keys

namespace {

using checkpoint_keys::ReadBE;

absl::string_view View(const rocksdb::Slice& slice) { return absl::string_view(slice.data(), slice.size()); }

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
      auto key = ActorKey::FromProto(a.getActor());
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

absl::StatusOr<std::string> CheckpointCatalog::ReadActor(uint64_t id, const ActorStateEntry& entry) const {
  const std::string name = entry.actor.ToString();
  std::string state;  // grown from what is stored: the manifest's sizes are not trusted
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = checkpoint_keys::ActorPrefix(id, entry.actor);
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

absl::StatusOr<std::vector<CheckpointInfo>> CheckpointCatalog::List() const {
  std::vector<CheckpointInfo> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string start(1, checkpoint_keys::kManifestTag);
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

absl::StatusOr<CheckpointInfo> CheckpointCatalog::Get(uint64_t id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), checkpoint_keys::ManifestKey(id), &value);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("no checkpoint ", id));
  if (!s.ok()) return storage::FromRocksDb(s, absl::StrCat("read checkpoint ", id));
  auto info = DecodeManifest(value);
  if (!info.ok()) return absl::DataLossError(absl::StrCat("checkpoint ", id, ": ", info.status().message()));
  return info;
}

absl::StatusOr<std::string> CheckpointCatalog::LoadActor(uint64_t id, const ActorKey& actor) const {
  auto info = Get(id);
  if (!info.ok()) return info.status();
  for (const ActorStateEntry& entry : info->actors) {
    if (entry.actor == actor) return ReadActor(id, entry);
  }
  return absl::NotFoundError(absl::StrCat("checkpoint ", id, " has no actor ", actor.ToString()));
}

absl::Status CheckpointCatalog::Verify(uint64_t id) const {
  auto info = Get(id);
  if (!info.ok()) return info.status();
  for (const ActorStateEntry& entry : info->actors) {
    if (auto state = ReadActor(id, entry); !state.ok()) return state.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<CheckpointInfo> CheckpointCatalog::LatestUsable() const {
  auto all = List();
  if (!all.ok()) return all.status();
  for (auto it = all->rbegin(); it != all->rend(); ++it) {
    absl::Status s = Verify(it->id);
    if (s.ok()) return *it;
    SY_LOG(WARNING) << "checkpoint " << it->id << " is not usable: " << s;
  }
  return absl::NotFoundError("no usable checkpoint");
}

}  // namespace sy::cluster
