// CheckpointStore: manifest-last commits, interrupted checkpoints, retention, reopen,
// corruption detection and storage faults (a rocksdb::Env that fails writes).
#include "services/coordinator/checkpoint_store.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/base/fnv1a.h"
#include "tests/unit/coordinator/storage_faults.h"

namespace sy::coordinator {
namespace {

namespace fs = std::filesystem;
using testing::FailingWritesEnv;
using testing::TempDir;
using ::testing::HasSubstr;

// State bytes of an actor in checkpoint `id`, different per actor and checkpoint.
std::string StateOf(uint64_t id, const cluster::ActorKey& actor, size_t size = 1000) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 31 + id * 7 + actor.switch_layer * 3 + actor.expert + actor.shard * 11) & 0xff);
  return s;
}

const std::vector<cluster::ActorKey> kActors = {cluster::ActorKey::Expert(0, 0), cluster::ActorKey::Expert(0, 1), cluster::ActorKey::Dense(0)};

// Writes every actor's state in chunks of 300 bytes; returns the info to commit.
CheckpointInfo WriteChunks(CheckpointStore& store, uint64_t id, uint64_t step) {
  CheckpointInfo info;
  info.id = id;
  info.step = step;
  info.config_hash = 0xabc;
  info.seed = 5;
  for (const cluster::ActorKey& a : kActors) {
    const std::string state = StateOf(id, a);
    uint32_t index = 0;
    for (size_t off = 0; off < state.size(); off += 300, ++index) {
      EXPECT_TRUE(store.PutChunk(id, a, index, absl::string_view(state).substr(off, 300)).ok());
    }
    info.actors.push_back({a, step, state.size(), index, ChecksumOf(state)});
  }
  return info;
}

TEST(CheckpointStoreTest, CommitListLoad) {
  TempDir dir;
  auto store = CheckpointStore::Open(dir.path(), {});
  ASSERT_TRUE(store.ok()) << store.status();
  const CheckpointInfo info = WriteChunks(**store, 1, 10);
  ASSERT_TRUE((*store)->Commit(info).ok());
  auto list = (*store)->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].step, 10u);
  EXPECT_EQ((*list)[0].config_hash, 0xabcu);
  EXPECT_EQ((*list)[0].actors.size(), 3u);
  EXPECT_EQ((*list)[0].actors[0].chunk_count, 4u);
  for (const cluster::ActorKey& a : kActors) {
    auto state = (*store)->LoadActor(1, a);
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(*state, StateOf(1, a));
  }
  EXPECT_EQ((*store)->LoadActor(1, cluster::ActorKey::Expert(3, 3)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*store)->Get(2).status().code(), absl::StatusCode::kNotFound);
  // A committed checkpoint never changes.
  EXPECT_EQ((*store)->PutChunk(1, kActors[0], 0, "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*store)->Commit(info).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CheckpointStoreTest, CommitRefusesMissingOrWrongChunks) {
  TempDir dir;
  auto store = CheckpointStore::Open(dir.path(), {});
  ASSERT_TRUE(store.ok());
  CheckpointInfo info = WriteChunks(**store, 1, 10);
  CheckpointInfo more_chunks = info;
  more_chunks.actors[1].chunk_count = 5;
  absl::Status s = (*store)->Commit(more_chunks);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("L0E1"));
  CheckpointInfo bad_sum = info;
  bad_sum.actors[2].checksum ^= 1;
  s = (*store)->Commit(bad_sum);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("D0"));
  CheckpointInfo twice = info;
  twice.actors.push_back(info.actors[0]);
  EXPECT_EQ((*store)->Commit(twice).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*store)->List()->empty());  // nothing committed by the failures
  EXPECT_TRUE((*store)->Commit(info).ok());
}

TEST(CheckpointStoreTest, InterruptedCheckpointIsNeverUsedAndIsCollectedOnReopen) {
  TempDir dir;
  {
    auto store = CheckpointStore::Open(dir.path(), {});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Commit(WriteChunks(**store, 1, 10)).ok());
    WriteChunks(**store, 2, 20);  // the coordinator dies before the manifest
    EXPECT_EQ((*store)->List()->size(), 1u);
    EXPECT_EQ((*store)->LatestUsable()->id, 1u);
    EXPECT_EQ((*store)->LoadActor(2, kActors[0]).status().code(), absl::StatusCode::kNotFound);
  }
  auto reopened = CheckpointStore::Open(dir.path(), {});
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->orphan_chunks_collected(), 12u);  // 3 actors x 4 chunks of checkpoint 2
  EXPECT_EQ((*reopened)->LatestUsable()->id, 1u);
  EXPECT_EQ(*(*reopened)->LoadActor(1, kActors[1]), StateOf(1, kActors[1]));
  // Checkpoint 2 can be taken again from scratch.
  ASSERT_TRUE((*reopened)->Commit(WriteChunks(**reopened, 2, 20)).ok());
  EXPECT_EQ((*reopened)->LatestUsable()->id, 2u);
}

TEST(CheckpointStoreTest, AbandonDeletesAnUncommittedAttempt) {
  TempDir dir;
  auto store = CheckpointStore::Open(dir.path(), {});
  ASSERT_TRUE(store.ok());
  CheckpointInfo info = WriteChunks(**store, 1, 10);
  ASSERT_TRUE((*store)->Abandon(1).ok());
  EXPECT_EQ((*store)->Commit(info).code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE((*store)->Commit(WriteChunks(**store, 1, 10)).ok());
  EXPECT_EQ((*store)->Abandon(1).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CheckpointStoreTest, RetentionKeepsTheNewestK) {
  TempDir dir;
  CheckpointStoreOptions options;
  options.retain = 2;
  auto store = CheckpointStore::Open(dir.path(), options);
  ASSERT_TRUE(store.ok());
  for (uint64_t id = 1; id <= 4; ++id) ASSERT_TRUE((*store)->Commit(WriteChunks(**store, id, id * 10)).ok());
  auto list = (*store)->List();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, 3u);
  EXPECT_EQ((*list)[1].id, 4u);
  // The old checkpoints' chunks are gone too.
  std::string value;
  EXPECT_TRUE((*store)->raw_db_for_testing()->Get({}, CheckpointStore::ChunkKey(1, kActors[0], 0), &value).IsNotFound());
  EXPECT_TRUE((*store)->raw_db_for_testing()->Get({}, CheckpointStore::ChunkKey(4, kActors[0], 0), &value).ok());
  CheckpointStoreOptions keep_none;
  keep_none.retain = 0;
  EXPECT_EQ(CheckpointStore::Open(dir.path() + "_x", keep_none).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CheckpointStoreTest, ReopenAfterCloseSeesEverything) {
  TempDir dir;
  {
    auto store = CheckpointStore::Open(dir.path(), {});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Commit(WriteChunks(**store, 5, 50)).ok());
  }
  auto store = CheckpointStore::Open(dir.path(), {});
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->orphan_chunks_collected(), 0u);
  auto latest = (*store)->LatestUsable();
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->id, 5u);
  EXPECT_EQ(latest->step, 50u);
  EXPECT_EQ(*(*store)->LoadActor(5, kActors[2]), StateOf(5, kActors[2]));
}

TEST(CheckpointStoreTest, CorruptChunkIsDataLossNamingTheActorAndLatestUsableFallsBack) {
  TempDir dir;
  auto store = CheckpointStore::Open(dir.path(), {});
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Commit(WriteChunks(**store, 1, 10)).ok());
  ASSERT_TRUE((*store)->Commit(WriteChunks(**store, 2, 20)).ok());
  ASSERT_TRUE((*store)->raw_db_for_testing()->Put({}, CheckpointStore::ChunkKey(2, kActors[1], 2), "garbage").ok());
  auto loaded = (*store)->LoadActor(2, kActors[1]);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("L0E1"));
  EXPECT_TRUE((*store)->LoadActor(2, kActors[0]).ok());  // the others still load
  EXPECT_EQ((*store)->Verify(2).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ((*store)->LatestUsable()->id, 1u);
  // Same length, one bit flipped: only the checksum can tell.
  std::string flipped = StateOf(1, kActors[0]).substr(0, 300);
  flipped[7] ^= 1;
  ASSERT_TRUE((*store)->raw_db_for_testing()->Put({}, CheckpointStore::ChunkKey(1, kActors[0], 0), flipped).ok());
  EXPECT_THAT(std::string((*store)->Verify(1).message()), HasSubstr("checksum"));
  EXPECT_EQ((*store)->LatestUsable().status().code(), absl::StatusCode::kNotFound);
}

TEST(CheckpointStoreTest, MetadataSurvivesReopenAndIsNotAnOrphan) {
  TempDir dir;
  {
    auto store = CheckpointStore::Open(dir.path(), {});
    ASSERT_TRUE(store.ok());
    EXPECT_EQ((*store)->GetMeta("placement").status().code(), absl::StatusCode::kNotFound);
    ASSERT_TRUE((*store)->PutMeta("placement", "table-bytes").ok());
  }
  auto store = CheckpointStore::Open(dir.path(), {});
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->orphan_chunks_collected(), 0u);
  EXPECT_EQ(*(*store)->GetMeta("placement"), "table-bytes");
  EXPECT_TRUE((*store)->List()->empty());
}

TEST(CheckpointStoreTest, CorruptManifestIsLeftOut) {
  TempDir dir;
  auto store = CheckpointStore::Open(dir.path(), {});
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Commit(WriteChunks(**store, 1, 10)).ok());
  ASSERT_TRUE((*store)->Commit(WriteChunks(**store, 2, 20)).ok());
  std::string key(1, 'm');
  key.append(7, '\0');
  key.push_back(2);
  ASSERT_TRUE((*store)->raw_db_for_testing()->Put({}, key, std::string(24, 'z')).ok());
  EXPECT_EQ((*store)->List()->size(), 1u);
  EXPECT_EQ((*store)->Get(2).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ((*store)->LatestUsable()->id, 1u);
}

TEST(CheckpointStoreTest, CorruptOrLockedDatabaseIsAClearErrorAtOpen) {
  TempDir dir;
  {
    auto store = CheckpointStore::Open(dir.path(), {});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Commit(WriteChunks(**store, 1, 10)).ok());
    // A second opener of the same directory is refused while the first holds it.
    auto second = CheckpointStore::Open(dir.path(), {});
    EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(second.status().message()), HasSubstr(dir.path()));
  }
  // Clobber the MANIFEST files RocksDB itself needs.
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("MANIFEST-", 0) == 0 || name == "CURRENT") {
      std::ofstream(entry.path(), std::ios::trunc) << "not a rocksdb file at all";
    }
  }
  auto broken = CheckpointStore::Open(dir.path(), {});
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(std::string(broken.status().message()), HasSubstr(dir.path()));
  // A path that is a regular file is no database either.
  TempDir file_dir;
  std::ofstream(file_dir.path()) << "x";
  EXPECT_FALSE(CheckpointStore::Open(file_dir.path(), {}).ok());
  fs::remove(file_dir.path());
}

TEST(CheckpointStoreTest, FailedManifestWriteLeavesThePreviousCheckpointInUse) {
  TempDir dir;
  FailingWritesEnv env;
  {
    CheckpointStoreOptions options;
    options.env = &env;
    auto store = CheckpointStore::Open(dir.path(), options);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Commit(WriteChunks(**store, 1, 10)).ok());
    CheckpointInfo info = WriteChunks(**store, 2, 20);
    env.fail = true;  // the disk fails exactly when the manifest is written
    absl::Status s = (*store)->Commit(info);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_FALSE((*store)->PutChunk(3, kActors[0], 0, "x").ok());
  }
  env.fail = false;
  auto store = CheckpointStore::Open(dir.path(), {});
  ASSERT_TRUE(store.ok()) << store.status();
  auto latest = (*store)->LatestUsable();
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->id, 1u);
  EXPECT_EQ((*store)->List()->size(), 1u);
}

}  // namespace
}  // namespace sy::coordinator
