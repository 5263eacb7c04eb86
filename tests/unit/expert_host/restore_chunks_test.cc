// Restored states assembled from chunks: the whole state comes out once the last
// chunk is in and verifies; a chunk that does not follow is refused and drops the
// partial state; a state whose checksum is wrong is DataLoss naming the checkpoint; a
// claimed total other than the actor's real state size is refused before anything is
// buffered, and only a bounded number of states is assembled at once (an idle one
// makes room).
#include "services/expert_host/restore_chunks.h"

#include <string>

#include <gtest/gtest.h>

#include <capnp/message.h>

#include "absl/time/clock.h"
#include "common/base/fnv1a.h"

namespace sy::expert_host {
namespace {

const cluster::ActorKey kActor = cluster::ActorKey::Expert(0, 1);

// Chunk `index` of `count` of `whole`, `size` bytes each (the last one shorter), added to `chunks`
// as a chunk of `actor`, whose real state has `state_bytes` bytes (whole's size when 0).
absl::StatusOr<std::optional<std::string>> AddChunk(RestoreChunks& chunks, const std::string& whole, uint32_t index,
                                                    uint32_t count, size_t size, uint64_t checksum,
                                                    const cluster::ActorKey& actor = kActor,
                                                    uint64_t state_bytes = 0) {
  capnp::MallocMessageBuilder message;
  auto chunk = message.initRoot<proto::expert::ChunkIn>();
  chunk.setVersion(4);
  chunk.setIndex(index);
  chunk.setCount(count);
  chunk.setOffset(index * size);
  chunk.setTotalBytes(whole.size());
  chunk.setChecksum(checksum);
  const std::string bytes = whole.substr(index * size, size);
  return chunks.Add(actor, chunk.asReader(), transport::Frame::CopyOf(bytes.data(), bytes.size()), 7,
                    state_bytes > 0 ? state_bytes : whole.size());
}

TEST(RestoreChunksTest, TheWholeStateComesOutAfterTheLastChunk) {
  RestoreChunks chunks;
  const std::string whole = "0123456789abcdef";
  auto first = AddChunk(chunks, whole, 0, 2, 8, ChecksumOf(whole));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->has_value());
  auto last = AddChunk(chunks, whole, 1, 2, 8, ChecksumOf(whole));
  ASSERT_TRUE(last.ok()) << last.status();
  ASSERT_TRUE(last->has_value());
  EXPECT_EQ(**last, whole);
}

TEST(RestoreChunksTest, AChunkThatDoesNotFollowIsRefusedAndDropsThePartialState) {
  RestoreChunks chunks;
  const std::string whole = "0123456789abcdefghijklmn";
  ASSERT_TRUE(AddChunk(chunks, whole, 0, 3, 8, ChecksumOf(whole)).ok());
  EXPECT_EQ(AddChunk(chunks, whole, 2, 3, 8, ChecksumOf(whole)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AddChunk(chunks, whole, 1, 3, 8, ChecksumOf(whole)).status().code(),
            absl::StatusCode::kInvalidArgument);  // chunk 0 is gone too
}

TEST(RestoreChunksTest, AWrongChecksumIsDataLossNamingTheCheckpoint) {
  RestoreChunks chunks;
  const std::string whole = "01234567";
  const absl::Status lost = AddChunk(chunks, whole, 0, 1, 8, ChecksumOf(whole) + 1).status();
  EXPECT_EQ(lost.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(lost.message().find("checkpoint 7"), std::string::npos) << lost;
}

TEST(RestoreChunksTest, AClaimedTotalOtherThanTheRealStateSizeIsRefusedBeforeBuffering) {
  RestoreChunks chunks(1);
  const std::string claim(64, 'x');  // announces 64 bytes for an actor whose state has 16
  const absl::Status refused = AddChunk(chunks, claim, 0, 8, 8, ChecksumOf(claim), kActor, 16).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  EXPECT_EQ(chunks.in_progress(), 0u);
  // Nothing was held for it: the one restore allowed still starts.
  const std::string whole = "0123456789abcdef";
  EXPECT_TRUE(AddChunk(chunks, whole, 0, 2, 8, ChecksumOf(whole)).ok());
  EXPECT_EQ(chunks.in_progress(), 1u);
}

TEST(RestoreChunksTest, RestoresBeyondTheConcurrentBoundAreRefusedUntilOneEnds) {
  RestoreChunks chunks(2);
  const std::string whole = "0123456789abcdef";
  const cluster::ActorKey a = cluster::ActorKey::Expert(0, 1), b = cluster::ActorKey::Expert(0, 2),
                          c = cluster::ActorKey::Dense(0);
  ASSERT_TRUE(AddChunk(chunks, whole, 0, 2, 8, ChecksumOf(whole), a).ok());
  ASSERT_TRUE(AddChunk(chunks, whole, 0, 2, 8, ChecksumOf(whole), b).ok());
  EXPECT_EQ(AddChunk(chunks, whole, 0, 2, 8, ChecksumOf(whole), c).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(chunks.in_progress(), 2u);
  auto done = AddChunk(chunks, whole, 1, 2, 8, ChecksumOf(whole), a);
  ASSERT_TRUE(done.ok() && done->has_value()) << done.status();
  EXPECT_TRUE(AddChunk(chunks, whole, 0, 2, 8, ChecksumOf(whole), c).ok());
}

TEST(RestoreChunksTest, AnAbandonedRestoreMakesRoomOnceIdle) {
  RestoreChunks chunks(1, absl::ZeroDuration());  // every partial state is idle at once
  const std::string whole = "0123456789abcdef";
  ASSERT_TRUE(AddChunk(chunks, whole, 0, 2, 8, ChecksumOf(whole), cluster::ActorKey::Expert(0, 1)).ok());
  absl::SleepFor(absl::Milliseconds(1));
  EXPECT_TRUE(AddChunk(chunks, whole, 0, 2, 8, ChecksumOf(whole), cluster::ActorKey::Expert(0, 2)).ok());
  EXPECT_EQ(chunks.in_progress(), 1u);
}

}  // namespace
}  // namespace sy::expert_host
