// ReplyCache: duplicate detection states, LRU eviction by count and by bytes, requests
// in progress that are never evicted, and a sender's answered replies forgotten.
#include <gtest/gtest.h>

#include "common/transport/reply_cache.h"

namespace sy::transport {
namespace {

Message ReplyOfBytes(size_t bytes) {
  return Message({"client"}, Frame::FromVector(std::vector<uint8_t>(bytes, 1)));
}

TEST(ReplyCache, NewThenInProgressThenDone) {
  ReplyCache cache(4, 1 << 20);
  Message reply;
  EXPECT_EQ(cache.Begin({"a", 1}, &reply), ReplyCache::State::kNew);
  EXPECT_EQ(cache.Begin({"a", 1}, &reply), ReplyCache::State::kInProgress);
  EXPECT_EQ(cache.Begin({"b", 1}, &reply), ReplyCache::State::kNew) << "keys are per sender";
  cache.Complete({"a", 1}, ReplyOfBytes(24));
  EXPECT_EQ(cache.Begin({"a", 1}, &reply), ReplyCache::State::kDone);
  EXPECT_EQ(reply.header.size(), 24u);
}

TEST(ReplyCache, EvictsLeastRecentlyUsedByCount) {
  ReplyCache cache(2, 1 << 20);
  Message reply;
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_EQ(cache.Begin({"a", id}, &reply), ReplyCache::State::kNew);
    cache.Complete({"a", id}, ReplyOfBytes(8));
    if (id == 2) {
      ASSERT_EQ(cache.Begin({"a", 1}, &reply), ReplyCache::State::kDone);  // 1 is now newest
    }
  }
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Begin({"a", 1}, &reply), ReplyCache::State::kDone);
  EXPECT_EQ(cache.Begin({"a", 3}, &reply), ReplyCache::State::kDone);
  EXPECT_EQ(cache.Begin({"a", 2}, &reply), ReplyCache::State::kNew) << "2 was least recently used";
}

TEST(ReplyCache, EvictsByBytesAndSkipsRepliesLargerThanTheCache) {
  ReplyCache cache(100, 100);
  Message reply;
  for (uint64_t id = 1; id <= 5; ++id) {
    cache.Begin({"a", id}, &reply);
    cache.Complete({"a", id}, ReplyOfBytes(40));
  }
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_LE(cache.bytes(), 100u);
  cache.Begin({"a", 9}, &reply);
  cache.Complete({"a", 9}, ReplyOfBytes(101));
  EXPECT_EQ(cache.Begin({"a", 9}, &reply), ReplyCache::State::kNew);
  EXPECT_LE(cache.bytes(), 100u);
}

TEST(ReplyCache, InProgressEntriesSurviveAnyNumberOfFinishedOnes) {
  ReplyCache cache(1, 1 << 20);
  Message reply;
  ASSERT_EQ(cache.Begin({"slow", 1}, &reply), ReplyCache::State::kNew);
  for (uint64_t id = 1; id <= 50; ++id) {
    cache.Begin({"fast", id}, &reply);
    cache.Complete({"fast", id}, ReplyOfBytes(8));
  }
  EXPECT_EQ(cache.Begin({"slow", 1}, &reply), ReplyCache::State::kInProgress);
}

TEST(ReplyCache, ForgetBelowDropsOnlyThatSendersLowerReplies) {
  ReplyCache cache(100, 1 << 20);
  Message reply;
  for (uint64_t id = 1; id <= 4; ++id) {
    for (const char* sender : {"a", "b"}) {
      cache.Begin({sender, id}, &reply);
      EXPECT_EQ(cache.Complete({sender, id}, ReplyOfBytes(8)), (id - 1) * 2 + (sender[0] == 'a' ? 1 : 2));
    }
  }
  ASSERT_EQ(cache.Begin({"a", 5}, &reply), ReplyCache::State::kNew);  // in progress: kept
  EXPECT_EQ(cache.ForgetBelow("a", 3), 6u);
  EXPECT_EQ(cache.size(), 6u);
  EXPECT_EQ(cache.bytes(), 48u);
  EXPECT_EQ(cache.Begin({"a", 3}, &reply), ReplyCache::State::kDone);
  EXPECT_EQ(cache.Begin({"b", 1}, &reply), ReplyCache::State::kDone) << "another sender's replies stay";
  EXPECT_EQ(cache.Begin({"a", 2}, &reply), ReplyCache::State::kNew) << "answered: forgotten";
  EXPECT_EQ(cache.ForgetBelow("a", 100), 4u);
  EXPECT_EQ(cache.size(), 4u);
  EXPECT_EQ(cache.Begin({"a", 5}, &reply), ReplyCache::State::kInProgress);
  EXPECT_EQ(cache.ForgetBelow("nobody", 100), 4u);  // an unknown sender changes nothing
  EXPECT_EQ(cache.size(), 4u);
}

}  // namespace
}  // namespace sy::transport
