// RpcNode over the in-process transport: request/reply, retries applied once,
// duplicates answered from the cache, deadlines, and receive-queue backpressure.
#include <atomic>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "common/transport/faulty_transport.h"
#include "common/transport/inproc_transport.h"
#include "common/transport/rpc.h"
#include "tests/unit/transport/testing.h"
#include "tests/unit/transport/wait.h"

namespace sy::transport {
namespace {

using testing::EchoHandler;
using testing::FillPing;
using testing::RawPing;
using testing::Request;
using testing::WaitUntil;

double CounterValue(metrics::Registry& registry, const std::string& name, const std::string& node) {
  return registry.GetCounter(name, "", {{"node", node}}).value();
}

absl::Time In(absl::Duration d) { return absl::Now() + d; }

float FirstFloat(const DecodedMessage& reply) {
  float value;
  std::memcpy(&value, reply.data(0).data(), sizeof(value));
  return value;
}

TEST(RpcInProc, RequestReplyEchoesTensor) {
  InProcNetwork net;
  auto server_transport = net.CreateTransport("server");
  ASSERT_TRUE(server_transport.ok());
  ASSERT_TRUE((*server_transport)->Bind("inproc://server").ok());
  auto server = RpcNode::Create(*std::move(server_transport), {}, EchoHandler);
  ASSERT_TRUE(server.ok());
  auto client_transport = net.CreateTransport("client");
  ASSERT_TRUE((*client_transport)->Connect("server", "inproc://server").ok());
  auto client = RpcNode::Create(*std::move(client_transport), {}, nullptr);
  ASSERT_TRUE(client.ok());

  for (int i = 0; i < 10; ++i) {
    Request request;
    FillPing(request, 256, static_cast<float>(i));
    auto reply = (*client)->Call({"server"}, request.header, request.data, In(absl::Seconds(10)));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_TRUE(reply->envelope().getIsReply());
    EXPECT_EQ(std::string(reply->envelope().getSender().cStr()), "server");
    ASSERT_EQ(reply->message().data.size(), 1u);
    EXPECT_EQ(reply->data(0).size(), 256u * 4);
    EXPECT_EQ(FirstFloat(*reply), static_cast<float>(i));
  }
}

// An echo server that loses 30% of its replies and counts how often each request id
// reached its handler, and a client that retries quickly.
struct LossyEcho {
  explicit LossyEcho(uint64_t seed) {
    auto server_inner = net.CreateTransport("server");
    if (!server_inner.ok() || !(*server_inner)->Bind("inproc://server").ok()) return;
    FaultSpec spec;
    spec.drop = 0.3;
    spec.seed = seed;
    RpcOptions server_options;
    server_options.metrics = &server_metrics;
    auto made_server = RpcNode::Create(FaultyTransport::Wrap(*std::move(server_inner), spec), server_options,
                                       [this](DecodedMessage request, Responder responder) {
                                         {
                                           std::lock_guard<std::mutex> lock(mu);
                                           ++applied[request.envelope().getRequestId()];
                                         }
                                         EchoHandler(std::move(request), responder);
                                       });
    auto client_transport = net.CreateTransport("client");
    if (!made_server.ok() || !client_transport.ok() || !(*client_transport)->Connect("server", "inproc://server").ok()) {
      return;
    }
    server = *std::move(made_server);
    RpcOptions client_options;
    client_options.metrics = &client_metrics;
    client_options.attempt_timeout = absl::Milliseconds(5);
    client_options.max_attempt_timeout = absl::Milliseconds(20);
    client_options.max_attempts = 40;
    auto made_client = RpcNode::Create(*std::move(client_transport), client_options, nullptr);
    if (made_client.ok()) client = *std::move(made_client);
  }

  // Every request reached the handler once, and `requests` did.
  void ExpectEachAppliedOnce(size_t requests) {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(applied.size(), requests);
    for (const auto& [id, runs] : applied) EXPECT_EQ(runs, 1) << "request " << id << " applied twice";
  }

  InProcNetwork net;
  std::mutex mu;
  std::map<uint64_t, int> applied;  // request id -> handler runs
  metrics::Registry server_metrics, client_metrics;
  std::unique_ptr<RpcNode> server, client;
};

TEST(RpcInProc, RetriedRequestIsAppliedOnceWhenRepliesAreDropped) {
  LossyEcho echo(7);
  ASSERT_TRUE(echo.server != nullptr && echo.client != nullptr);
  for (int i = 0; i < 30; ++i) {
    Request request;
    FillPing(request, 4, static_cast<float>(i));
    auto reply = echo.client->Call({"server"}, request.header, request.data, In(absl::Seconds(20)));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(FirstFloat(*reply), static_cast<float>(i));
  }
  echo.ExpectEachAppliedOnce(30);
  EXPECT_GT(CounterValue(echo.client_metrics, "sy_rpc_retries_total", "client"), 0);
  EXPECT_GT(CounterValue(echo.server_metrics, "sy_rpc_duplicates_answered_total", "server"), 0);
}

// Calls in flight together while replies are lost: each request is applied once (the
// replies of calls still waiting are kept for their retries), and the server forgets the
// replies its caller has had (Envelope.answeredBelow): after a last call it holds one.
TEST(RpcInProc, ConcurrentCallsWithLostRepliesAreAppliedOnceAndAnsweredRepliesForgotten) {
  LossyEcho echo(11);
  ASSERT_TRUE(echo.server != nullptr && echo.client != nullptr);
  constexpr int kRounds = 5, kInFlight = 8;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::future<absl::StatusOr<DecodedMessage>>> replies;
    for (int i = 0; i < kInFlight; ++i) {
      auto done = std::make_shared<std::promise<absl::StatusOr<DecodedMessage>>>();
      replies.push_back(done->get_future());
      Request request;
      FillPing(request, 4, static_cast<float>(round * kInFlight + i));
      echo.client->CallAsync({"server"}, request.header, request.data, In(absl::Seconds(20)),
                           [done](absl::StatusOr<DecodedMessage> reply) { done->set_value(std::move(reply)); });
    }
    for (int i = 0; i < kInFlight; ++i) {
      absl::StatusOr<DecodedMessage> reply = replies[i].get();
      ASSERT_TRUE(reply.ok()) << reply.status();
      EXPECT_EQ(FirstFloat(*reply), static_cast<float>(round * kInFlight + i));
    }
  }
  Request last;
  FillPing(last, 4, -1.0f);
  ASSERT_TRUE(echo.client->Call({"server"}, last.header, last.data, In(absl::Seconds(20))).ok());
  echo.ExpectEachAppliedOnce(kRounds * kInFlight + 1);
  EXPECT_GT(CounterValue(echo.server_metrics, "sy_rpc_duplicates_answered_total", "server"), 0);
  EXPECT_EQ(echo.server_metrics.GetGauge("sy_rpc_cached_replies", "", {{"node", "server"}}).value(), 1.0);
}

TEST(RpcInProc, DuplicateRequestIsAnsweredFromCacheAndInProgressDuplicateIgnored) {
  InProcNetwork net;
  auto server_transport = net.CreateTransport("server");
  ASSERT_TRUE((*server_transport)->Bind("inproc://server").ok());
  std::atomic<int> runs{0};
  std::mutex mu;
  std::vector<std::pair<DecodedMessage, Responder>> parked;  // requests not answered yet
  metrics::Registry registry;
  RpcOptions options;
  options.metrics = &registry;
  auto server = RpcNode::Create(*std::move(server_transport), options, [&](DecodedMessage request, Responder responder) {
    ++runs;
    std::lock_guard<std::mutex> lock(mu);
    parked.emplace_back(std::move(request), responder);
  });
  ASSERT_TRUE(server.ok());
  auto raw = net.CreateTransport("raw-client");
  ASSERT_TRUE((*raw)->Connect("server", "inproc://server").ok());

  // The same request twice while the first is still being handled: applied once.
  ASSERT_TRUE((*raw)->Send(RawPing({"server"}, "raw-client", 99, 8, 5.0f), In(absl::Seconds(1))).ok());
  ASSERT_TRUE((*raw)->Send(RawPing({"server"}, "raw-client", 99, 8, 5.0f), In(absl::Seconds(1))).ok());
  ASSERT_TRUE(WaitUntil([&] { return CounterValue(registry, "sy_rpc_duplicates_in_progress_total", "server") == 1; }));
  EXPECT_EQ(runs.load(), 1);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(parked.size(), 1u);
    EchoHandler(std::move(parked[0].first), parked[0].second);
  }
  auto first = (*raw)->Receive(In(absl::Seconds(10)));
  ASSERT_TRUE(first.ok()) << first.status();

  // Once answered, a duplicate gets the cached reply; the handler does not run again.
  ASSERT_TRUE((*raw)->Send(RawPing({"server"}, "raw-client", 99, 8, 5.0f), In(absl::Seconds(1))).ok());
  auto second = (*raw)->Receive(In(absl::Seconds(10)));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(CounterValue(registry, "sy_rpc_duplicates_answered_total", "server"), 1);
  auto decoded = DecodedMessage::Decode(*std::move(second), {});
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->envelope().getRequestId(), 99u);
  EXPECT_EQ(FirstFloat(*decoded), 5.0f);
}

TEST(RpcInProc, RequestNobodyAnswersEndsWithDeadlineExceeded) {
  InProcNetwork net;
  auto client_transport = net.CreateTransport("client");
  ASSERT_TRUE((*client_transport)->Connect("ghost", "inproc://nobody-binds-this").ok());
  RpcOptions options;
  options.attempt_timeout = absl::Milliseconds(10);
  auto client = RpcNode::Create(*std::move(client_transport), options, nullptr);
  ASSERT_TRUE(client.ok());
  Request request;
  FillPing(request, 0, 0);
  auto reply = (*client)->Call({"ghost"}, request.header, {}, In(absl::Milliseconds(100)));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded) << reply.status();
  EXPECT_EQ(CounterValue((*client)->metrics(), "sy_rpc_deadline_exceeded_total", "client"), 1);
}

TEST(RpcInProc, ErrorStatusFromHandlerReachesCallerWithEpoch) {
  InProcNetwork net;
  auto server_transport = net.CreateTransport("server");
  ASSERT_TRUE((*server_transport)->Bind("inproc://server").ok());
  auto server = RpcNode::Create(*std::move(server_transport), {}, [](DecodedMessage, Responder responder) {
    absl::Status stale = absl::AbortedError("stale placement epoch");
    stale.SetPayload(kCurrentEpochPayload, absl::Cord("12"));
    responder.Fail(stale);
  });
  auto client_transport = net.CreateTransport("client");
  ASSERT_TRUE((*client_transport)->Connect("server", "inproc://server").ok());
  auto client = RpcNode::Create(*std::move(client_transport), {}, nullptr);
  Request request;
  FillPing(request, 0, 0);
  auto reply = (*client)->Call({"server"}, request.header, {}, In(absl::Seconds(10)));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(reply.status().message(), "stale placement epoch");
  auto epoch = reply.status().GetPayload(kCurrentEpochPayload);
  ASSERT_TRUE(epoch.has_value());
  EXPECT_EQ(std::string(*epoch), "12");
}

TEST(InProcTransport, FullReceiveQueueMakesSenderWaitThenFail) {
  InProcNetwork net;
  QueueLimits limits;
  limits.max_messages = 4;
  auto server = net.CreateTransport("server", limits);
  ASSERT_TRUE((*server)->Bind("inproc://server").ok());
  auto client = net.CreateTransport("client");
  ASSERT_TRUE((*client)->Connect("server", "inproc://server").ok());

  // Nobody receives: four messages fit, the fifth waits for its deadline and fails.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE((*client)->Send(RawPing({"server"}, "client", i + 1, 4, 0), In(absl::Milliseconds(5))).ok());
  }
  absl::Status full = (*client)->Send(RawPing({"server"}, "client", 5, 4, 0), In(absl::Milliseconds(5)));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;

  // A slow receiver and a fast sender that waits: everything arrives, in order, and
  // the queue never holds more than its bound.
  std::thread receiver([&] {
    for (int i = 0; i < 104; ++i) {
      auto message = (*server)->Receive(In(absl::Seconds(20)));
      ASSERT_TRUE(message.ok()) << message.status();
      auto decoded = DecodedMessage::Decode(*std::move(message), {});
      ASSERT_TRUE(decoded.ok());
      EXPECT_EQ(decoded->envelope().getRequestId(), static_cast<uint64_t>(i + 1));
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  for (int i = 5; i <= 104; ++i) {
    ASSERT_TRUE((*client)->Send(RawPing({"server"}, "client", i, 4, 0), In(absl::Seconds(20))).ok());
  }
  receiver.join();
  EXPECT_EQ((*server)->stats().max_inbound_depth, 4u);
}

// Two nodes that each bind and connect to the other, calling both ways at once:
// replies cross in opposite directions (this once took the two node locks in
// opposite orders, which Abseil's deadlock detector aborts on).
TEST(RpcInProc, TwoPeersCallingEachOtherConcurrently) {
  InProcNetwork net;
  std::vector<std::unique_ptr<RpcNode>> nodes;
  for (const std::string name : {"a", "b"}) {
    auto transport = net.CreateTransport(name);
    ASSERT_TRUE(transport.ok());
    ASSERT_TRUE((*transport)->Bind("inproc://" + name).ok());
    (*transport)->Connect(name == "a" ? "b" : "a", name == "a" ? "inproc://b" : "inproc://a").IgnoreError();
    auto node = RpcNode::Create(*std::move(transport), {}, EchoHandler);
    ASSERT_TRUE(node.ok());
    nodes.push_back(*std::move(node));
  }
  std::atomic<int> answered{0};
  auto caller = [&](int from, const std::string& to) {
    for (int i = 0; i < 200; ++i) {
      Request request;
      FillPing(request, 16, static_cast<float>(i));
      auto reply = nodes[from]->Call({to}, request.header, request.data, In(absl::Seconds(10)));
      if (reply.ok() && FirstFloat(*reply) == static_cast<float>(i)) ++answered;
    }
  };
  std::thread ab(caller, 0, "b"), ba(caller, 1, "a");
  ab.join();
  ba.join();
  EXPECT_EQ(answered.load(), 400);
}


// A ping header whose body is `bytes` of text: over the default 64 KiB header limit for a large `bytes`.
void FillBigPing(capnp::MallocMessageBuilder& header, size_t bytes) {
  auto envelope = header.initRoot<proto::Envelope>();
  envelope.setKind(proto::MessageKind::PING);
  envelope.getBody().setAs<capnp::Text>(std::string(bytes, 'x'));
}

// A reply over the client's header limit is refused at its door, and the client knows
// which call it answers: that call ends at once, not at its deadline (a retry would only
// fetch the same reply from the server's reply cache).
TEST(RpcInProc, ReplyTooLargeEndsTheCallAtOnceWithResourceExhausted) {
  InProcNetwork net;
  auto server_transport = net.CreateTransport("server");
  ASSERT_TRUE((*server_transport)->Bind("inproc://server").ok());
  auto server = RpcNode::Create(*std::move(server_transport), {}, [](DecodedMessage, Responder responder) {
    capnp::MallocMessageBuilder reply;
    FillBigPing(reply, 256u << 10);
    responder.Reply(reply);
  });
  ASSERT_TRUE(server.ok());
  auto client_transport = net.CreateTransport("client");
  ASSERT_TRUE((*client_transport)->Connect("server", "inproc://server").ok());
  auto client = RpcNode::Create(*std::move(client_transport), {}, nullptr);
  ASSERT_TRUE(client.ok());
  Request request;
  FillPing(request, 0, 0);
  const absl::Time start = absl::Now();
  auto reply = (*client)->Call({"server"}, request.header, {}, In(absl::Seconds(20)));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kResourceExhausted) << reply.status();
  EXPECT_NE(reply.status().message().find("reply too large"), absl::string_view::npos) << reply.status();
  EXPECT_NE(reply.status().message().find("exceeds 65536"), absl::string_view::npos) << reply.status();
  EXPECT_LT(took, absl::Seconds(10)) << "the call waited for its deadline";
  EXPECT_EQ(CounterValue((*client)->metrics(), "sy_rpc_deadline_exceeded_total", "client"), 0);
  EXPECT_EQ(CounterValue((*client)->metrics(), "sy_rpc_malformed_total", "client"), 1);
}

// The server side of the same rule: a request over the header limit is answered with
// InvalidArgument under its id, so its call ends at once too, and counted as refused (oversized).
TEST(RpcInProc, RequestTooLargeIsRefusedUnderItsIdAtOnce) {
  InProcNetwork net;
  auto server_transport = net.CreateTransport("server");
  ASSERT_TRUE((*server_transport)->Bind("inproc://server").ok());
  std::atomic<int> handled{0};
  auto server = RpcNode::Create(*std::move(server_transport), {}, [&](DecodedMessage request, Responder responder) {
    ++handled;
    EchoHandler(std::move(request), std::move(responder));
  });
  ASSERT_TRUE(server.ok());
  auto client_transport = net.CreateTransport("client");
  ASSERT_TRUE((*client_transport)->Connect("server", "inproc://server").ok());
  auto client = RpcNode::Create(*std::move(client_transport), {}, nullptr);
  ASSERT_TRUE(client.ok());
  capnp::MallocMessageBuilder request;
  FillBigPing(request, 256u << 10);
  const absl::Time start = absl::Now();
  auto reply = (*client)->Call({"server"}, request, {}, In(absl::Seconds(20)));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument) << reply.status();
  EXPECT_NE(reply.status().message().find("exceeds 65536"), absl::string_view::npos) << reply.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << "the call waited for its deadline";
  EXPECT_EQ(handled.load(), 0);
  EXPECT_EQ((*server)->metrics().GetCounter("sy_refused_total", "", {{"reason", "oversized"}}).value(), 1);
}

}  // namespace
}  // namespace sy::transport
