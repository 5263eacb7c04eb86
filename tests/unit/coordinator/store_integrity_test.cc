// The checkpoint database refuses to be used when it is damaged, and deletes nothing it
// cannot read: a flipped byte or a truncation in the write-ahead log, a truncated table
// file, a truncated RocksDB MANIFEST (which silently drops the newest commit), and a
// manifest read that fails (not NotFound) during start-up.
#include <functional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/base/fnv1a.h"
#include "services/coordinator/checkpoint_store.h"
#include "tests/unit/coordinator/storage_faults.h"

namespace sy::coordinator {
namespace {

using testing::DbFiles;
using testing::TempDir;
using ::testing::HasSubstr;

const cluster::ActorKey kActor = cluster::ActorKey::Expert(0, 0);

std::string StateOf(uint64_t id) { return std::string(2000, static_cast<char>('a' + id)); }

// Commits checkpoint `id` (step 10 * id) of one actor in one chunk.
void CommitOne(CheckpointStore& store, uint64_t id) {
  const std::string state = StateOf(id);
  ASSERT_TRUE(store.PutChunk(id, kActor, 0, state).ok());
  CheckpointInfo info;
  info.id = id;
  info.step = 10 * id;
  info.actors.push_back({kActor, info.step, state.size(), 1, ChecksumOf(state)});
  ASSERT_TRUE(store.Commit(info).ok());
}

// Commits checkpoints 1 and 2; with `flush`, each lands in its own table file.
void CommitTwo(const std::string& path, bool flush) {
  auto store = CheckpointStore::Open(path, {});
  ASSERT_TRUE(store.ok()) << store.status();
  for (uint64_t id : {1, 2}) {
    ASSERT_NO_FATAL_FAILURE(CommitOne(**store, id));
    if (flush) {
      ASSERT_TRUE((*store)->raw_db_for_testing()->Flush({}).ok());
    }
  }
}

void ExpectRefusedNaming(const std::string& path, const std::string& what) {
  auto store = CheckpointStore::Open(path, {});
  ASSERT_FALSE(store.ok()) << "a damaged database (" << what << ") was opened";
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
}

void ExpectBothUsable(const std::string& path) {
  auto store = CheckpointStore::Open(path, {});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Verify(1).ok());
  EXPECT_TRUE((*store)->Verify(2).ok());
}

// Commits two checkpoints that stay in the write-ahead log, damages every log file, reopens.
void ExpectDamagedLogRefused(const std::function<void(const std::string&)>& damage, const std::string& what) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(CommitTwo(dir.path(), /*flush=*/false));
  const auto logs = DbFiles(dir.path(), ".log");
  ASSERT_FALSE(logs.empty());
  for (const std::string& log : logs) damage(log);
  ExpectRefusedNaming(dir.path(), what);
}

TEST(StoreIntegrityTest, FlippedByteInTheWriteAheadLogRefusesTheStart) {
  ExpectDamagedLogRefused(testing::FlipMiddleByte, "WAL byte flip");
}

TEST(StoreIntegrityTest, TruncatedWriteAheadLogRefusesTheStart) {
  ExpectDamagedLogRefused([](const std::string& log) { testing::Truncate(log, 100); }, "WAL truncated");
}

TEST(StoreIntegrityTest, TruncatedTableFileRefusesTheStart) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(CommitTwo(dir.path(), /*flush=*/true));
  const auto tables = DbFiles(dir.path(), ".sst");
  ASSERT_EQ(tables.size(), 2u);
  testing::Truncate(tables[0], 100);
  ExpectRefusedNaming(dir.path(), "table file truncated");
}

TEST(StoreIntegrityTest, TruncatedRocksDbManifestThatDropsACommitRefusesTheStart) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(CommitTwo(dir.path(), /*flush=*/true));
  const auto manifests = DbFiles(dir.path(), "MANIFEST-");
  ASSERT_EQ(manifests.size(), 1u);
  // The last version edit (the table holding checkpoint 2's manifest) is cut off:
  // RocksDB opens without it, as if checkpoint 2 had never been committed.
  testing::Truncate(manifests[0], 20);
  auto store = CheckpointStore::Open(dir.path(), {});
  ASSERT_FALSE(store.ok()) << "the database lost checkpoint 2 and was opened anyway";
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("lost committed checkpoint 2"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(dir.path()));
}

TEST(StoreIntegrityTest, ManifestReadErrorStopsTheStartAndDeletesNothing) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(CommitTwo(dir.path(), /*flush=*/false));
  CheckpointStoreOptions failing;
  failing.wrap_db_for_testing = testing::FailManifestReads;
  auto store = CheckpointStore::Open(dir.path(), failing);
  ASSERT_FALSE(store.ok()) << "a manifest that could not be read counted as absent";
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("manifest"));
  ExpectBothUsable(dir.path());  // no chunk was taken for an orphan
}

TEST(StoreIntegrityTest, AnUndamagedDatabaseReopensWithEveryCheckpoint) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(CommitTwo(dir.path(), /*flush=*/true));
  ExpectBothUsable(dir.path());
}

}  // namespace
}  // namespace sy::coordinator
