// FaultyTransport: spec parsing, and drop/dup/delay/reorder rates over 10000 messages
// with a fixed seed; zero rates change nothing.
#include <vector>

#include <gtest/gtest.h>

#include "common/transport/faulty_transport.h"
#include "common/transport/inproc_transport.h"
#include "tests/unit/transport/testing.h"

namespace sy::transport {
namespace {

using testing::RawPing;

constexpr int kMessages = 10000;

TEST(FaultSpec, ParsesEveryItem) {
  auto spec = ParseFaultSpec("drop=0.1,dup=0.05,delay_ms=20,reorder=0.1,seed=7");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_DOUBLE_EQ(spec->drop, 0.1);
  EXPECT_DOUBLE_EQ(spec->duplicate, 0.05);
  EXPECT_DOUBLE_EQ(spec->delay, 1.0) << "delay_ms alone delays every message";
  EXPECT_EQ(spec->delay_ms, 20);
  EXPECT_DOUBLE_EQ(spec->reorder, 0.1);
  EXPECT_EQ(spec->seed, 7u);
  auto partial = ParseFaultSpec(" delay=0.25 , delay_ms=3, reorder_ms=2");
  ASSERT_TRUE(partial.ok()) << partial.status();
  EXPECT_DOUBLE_EQ(partial->delay, 0.25);
  EXPECT_EQ(partial->reorder_ms, 2);
  auto empty = ParseFaultSpec("");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->Any());
}

TEST(FaultSpec, RejectsBadItems) {
  for (const char* bad : {"drop=1.5", "drop=-0.1", "dup=x", "delay_ms=-3", "bogus=1", "seed=abc", "drop"}) {
    auto spec = ParseFaultSpec(bad);
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(FaultSpec, FlagHelperWrapsOnlyWhenThereAreFaults) {
  InProcNetwork net;
  auto unchanged = WithFaultsFromFlag(*net.CreateTransport("a"), "seed=3");
  ASSERT_TRUE(unchanged.ok());
  EXPECT_EQ(dynamic_cast<FaultyTransport*>(unchanged->get()), nullptr);
  auto wrapped = WithFaultsFromFlag(*net.CreateTransport("b"), "drop=0.5");
  ASSERT_TRUE(wrapped.ok());
  EXPECT_NE(dynamic_cast<FaultyTransport*>(wrapped->get()), nullptr);
  EXPECT_EQ(WithFaultsFromFlag(*net.CreateTransport("c"), "drop=2").status().code(),
            absl::StatusCode::kInvalidArgument);
}

struct Pair {
  InProcNetwork net;
  std::unique_ptr<Transport> receiver;
  std::unique_ptr<FaultyTransport> sender;
};

std::unique_ptr<Pair> MakePair(const FaultSpec& spec) {
  auto pair = std::make_unique<Pair>();
  QueueLimits roomy;
  roomy.max_messages = 4 * kMessages;
  pair->receiver = *pair->net.CreateTransport("receiver", roomy);
  EXPECT_TRUE(pair->receiver->Bind("inproc://receiver").ok());
  pair->sender = FaultyTransport::Wrap(*pair->net.CreateTransport("sender"), spec);
  EXPECT_TRUE(pair->sender->Connect("receiver", "inproc://receiver").ok());
  return pair;
}

// Request ids in arrival order, until `expected` arrived.
std::vector<uint64_t> ReceiveIds(Transport& receiver, uint64_t expected) {
  std::vector<uint64_t> ids;
  while (ids.size() < expected) {
    auto message = receiver.Receive(absl::Now() + absl::Seconds(20));
    if (!message.ok()) break;
    auto decoded = DecodedMessage::Decode(*std::move(message), {});
    if (!decoded.ok()) break;
    ids.push_back(decoded->envelope().getRequestId());
  }
  return ids;
}

TEST(FaultyTransport, RatesMatchTheSpecWithinTolerance) {
  auto spec = ParseFaultSpec("drop=0.1,dup=0.05,delay=0.1,delay_ms=2,reorder=0.1,reorder_ms=1,seed=7");
  ASSERT_TRUE(spec.ok());
  auto pair = MakePair(*spec);
  for (int i = 1; i <= kMessages; ++i) {
    ASSERT_TRUE(pair->sender->Send(RawPing({"receiver"}, "sender", i, 1, 0), absl::Now() + absl::Seconds(5)).ok());
  }
  const FaultStats stats = pair->sender->fault_stats();
  EXPECT_EQ(stats.messages, static_cast<uint64_t>(kMessages));
  // Binomial standard deviations are ~0.003 (p=0.1) and ~0.002 (p=0.05): allow ~4 of them.
  EXPECT_NEAR(stats.dropped / double(kMessages), 0.10, 0.012);
  const double kept = kMessages - stats.dropped;
  EXPECT_NEAR(stats.duplicated / kept, 0.05, 0.01);
  EXPECT_NEAR(stats.delayed / kept, 0.10, 0.012);
  EXPECT_NEAR(stats.reordered / kept, 0.10, 0.012);

  const uint64_t expected = kMessages - stats.dropped + stats.duplicated;
  const std::vector<uint64_t> ids = ReceiveIds(*pair->receiver, expected);
  ASSERT_EQ(ids.size(), expected);
  int overtaken = 0;
  for (size_t i = 1; i < ids.size(); ++i) overtaken += ids[i] < ids[i - 1];
  EXPECT_GT(overtaken, 0) << "delayed and held-back messages must arrive out of order";
}

TEST(FaultyTransport, SameSeedSameFaults) {
  auto spec = ParseFaultSpec("drop=0.2,dup=0.1,seed=3");
  ASSERT_TRUE(spec.ok());
  std::vector<std::vector<uint64_t>> runs;
  for (int run = 0; run < 2; ++run) {
    auto pair = MakePair(*spec);
    for (int i = 1; i <= 2000; ++i) {
      ASSERT_TRUE(pair->sender->Send(RawPing({"receiver"}, "sender", i, 1, 0), absl::Now() + absl::Seconds(5)).ok());
    }
    const FaultStats stats = pair->sender->fault_stats();
    runs.push_back(ReceiveIds(*pair->receiver, 2000 - stats.dropped + stats.duplicated));
  }
  EXPECT_EQ(runs[0], runs[1]);
}

TEST(FaultyTransport, ZeroRatesChangeNothing) {
  auto pair = MakePair(FaultSpec{});
  for (int i = 1; i <= kMessages; ++i) {
    ASSERT_TRUE(pair->sender->Send(RawPing({"receiver"}, "sender", i, 1, 0), absl::Now() + absl::Seconds(5)).ok());
  }
  const FaultStats stats = pair->sender->fault_stats();
  EXPECT_EQ(stats.dropped + stats.duplicated + stats.delayed + stats.reordered, 0u);
  const std::vector<uint64_t> ids = ReceiveIds(*pair->receiver, kMessages);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) ASSERT_EQ(ids[i], static_cast<uint64_t>(i + 1));
  auto nothing_more = pair->receiver->Receive(absl::Now() + absl::Milliseconds(20));
  EXPECT_EQ(nothing_more.status().code(), absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace sy::transport
