// Corrupt values in the checkpoint catalog (services/coordinator/checkpoint_store.h):
// manifests (mutated bytes, with the trailing checksum left stale or recomputed so
// the Cap'n Proto reader itself is fuzzed) and chunks. Every reader (Get, List,
// LoadActor, Verify, LatestUsable) must answer DataLoss (or NotFound for an actor a
// rewritten manifest no longer lists), never crash or accept corrupt state.
#include <cstdint>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <capnp/serialize.h>
#include <rocksdb/db.h>

#include "common/base/fnv1a.h"
#include "services/coordinator/checkpoint_store.h"
#include "tests/fuzz/fuzz_rng.h"
#include "tests/fuzz/mutator.h"

namespace sy::fuzz {
namespace {

constexpr uint64_t kSeed = 0x5EED0005;
constexpr int kIterations = 1500;

using cluster::ActorKey;
using coordinator::CheckpointInfo;
using coordinator::CheckpointStore;

std::string ManifestKey(uint64_t id) {
  std::string key(1, 'm');
  for (int shift = 56; shift >= 0; shift -= 8) key += static_cast<char>((id >> shift) & 0xFF);
  return key;
}

class CheckpointStoreFuzz : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / "sy_checkpoint_store_fuzz";
    std::filesystem::remove_all(dir_);
    store_ = *CheckpointStore::Open(dir_.string(), {});
    CheckpointInfo info;
    info.id = 1;
    info.step = 10;
    info.seed = 3;
    for (const ActorKey& actor : {ActorKey::Expert(0, 1), ActorKey::Dense(2)}) {
      const std::string state(100 + actor.shard, static_cast<char>('a' + actor.shard));
      ASSERT_TRUE(store_->PutChunk(1, actor, 0, state.substr(0, 60)).ok());
      ASSERT_TRUE(store_->PutChunk(1, actor, 1, state.substr(60)).ok());
      info.actors.push_back({actor, 10, state.size(), 2, ChecksumOf(state)});
      states_.push_back(state);
    }
    ASSERT_TRUE(store_->Commit(info).ok());
    ASSERT_TRUE(store_->raw_db_for_testing()->Get(rocksdb::ReadOptions(), ManifestKey(1), &manifest_).ok());
    ASSERT_TRUE(store_->Get(1).ok());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Put(const std::string& key, const std::string& value) {
    ASSERT_TRUE(store_->raw_db_for_testing()->Put(rocksdb::WriteOptions(), key, value).ok());
  }

  std::filesystem::path dir_;
  std::unique_ptr<CheckpointStore> store_;
  std::string manifest_;
  std::vector<std::string> states_;
};

bool DataLossOr(const absl::Status& s, absl::StatusCode other) {
  return s.code() == absl::StatusCode::kDataLoss || s.code() == other;
}

TEST_F(CheckpointStoreFuzz, CorruptManifestsGiveDataLoss) {
  int decoded_after_recompute = 0;
  for (uint64_t i = 0; i < kIterations; ++i) {
    FuzzRng rng(kSeed, i);
    std::string value = Mutate(manifest_.substr(0, manifest_.size() - 8), rng);
    const bool recompute = rng.OneIn(2);
    const uint64_t sum = recompute ? ChecksumOf(value) : rng.Bits64();
    for (int shift = 56; shift >= 0; shift -= 8) value += static_cast<char>((sum >> shift) & 0xFF);
    Put(ManifestKey(1), value);
    const std::string where = "seed=" + std::to_string(kSeed) + " iteration=" + std::to_string(i) + "\n" + HexDump(value);

    auto info = store_->Get(1);
    if (info.ok()) {
      ++decoded_after_recompute;
    } else {
      ASSERT_EQ(info.status().code(), absl::StatusCode::kDataLoss) << info.status() << "\n" << where;
    }
    auto list = store_->List();
    ASSERT_TRUE(list.ok()) << list.status();
    ASSERT_EQ(list->size(), info.ok() ? 1u : 0u) << where;
    auto state = store_->LoadActor(1, ActorKey::Expert(0, 1));
    if (state.ok()) {
      ASSERT_EQ(*state, states_[0]) << where;  // accepted state is always the verified original
    } else {
      ASSERT_TRUE(DataLossOr(state.status(), absl::StatusCode::kNotFound)) << state.status() << "\n" << where;
    }
    const absl::Status verify = store_->Verify(1);
    ASSERT_TRUE(verify.ok() || verify.code() == absl::StatusCode::kDataLoss) << verify << "\n" << where;
    auto latest = store_->LatestUsable();
    ASSERT_TRUE(latest.ok() || latest.status().code() == absl::StatusCode::kNotFound) << latest.status();
  }
  EXPECT_GT(decoded_after_recompute, 0);
  Put(ManifestKey(1), manifest_);
  EXPECT_TRUE(store_->Verify(1).ok());
}

// A manifest (with a valid checksum) listing an actor of 2^62 bytes: DataLoss, not
// std::bad_alloc (the reader once reserved the manifest's size before checking it).
TEST_F(CheckpointStoreFuzz, HugeTotalBytesInManifestGivesDataLoss) {
  auto info = store_->Get(1);
  ASSERT_TRUE(info.ok());
  info->id = 2;
  info->actors[0].total_bytes = uint64_t{1} << 62;
  capnp::MallocMessageBuilder builder;
  coordinator::InfoToProto(*info, builder.initRoot<proto::checkpoint::Manifest>());
  const kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  const auto bytes = words.asBytes();
  std::string value(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
  const uint64_t sum = ChecksumOf(value);
  for (int shift = 56; shift >= 0; shift -= 8) value += static_cast<char>((sum >> shift) & 0xFF);
  Put(ManifestKey(2), value);
  EXPECT_EQ(store_->Verify(2).code(), absl::StatusCode::kDataLoss);
}

TEST_F(CheckpointStoreFuzz, CorruptChunksGiveDataLoss) {
  const ActorKey actor = ActorKey::Dense(2);
  for (uint64_t i = 0; i < kIterations; ++i) {
    FuzzRng rng(kSeed + 1, i);
    const uint32_t index = static_cast<uint32_t>(rng.Below(2));
    const std::string original = index == 0 ? states_[1].substr(0, 60) : states_[1].substr(60);
    std::string value = Mutate(original, rng);
    if (value == original) value += 'x';
    const std::string key = CheckpointStore::ChunkKey(1, actor, index);
    if (rng.OneIn(10)) {
      ASSERT_TRUE(store_->raw_db_for_testing()->Delete(rocksdb::WriteOptions(), key).ok());
    } else {
      Put(key, value);
    }
    auto state = store_->LoadActor(1, actor);
    ASSERT_EQ(state.status().code(), absl::StatusCode::kDataLoss)
        << state.status() << " seed=" << kSeed + 1 << " iteration=" << i << "\n" << HexDump(value);
    ASSERT_EQ(store_->Verify(1).code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(store_->LatestUsable().status().code(), absl::StatusCode::kNotFound);
    Put(key, original);
  }
  auto state = store_->LoadActor(1, actor);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, states_[1]);
}

}  // namespace
}  // namespace sy::fuzz
