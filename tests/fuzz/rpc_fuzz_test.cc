// RpcNode under a flood of mutated raw messages over the in-process transport:
// every message the door refuses is counted in sy_rpc_malformed_total and answered
// with InvalidArgument, serving goes on, and a valid request afterwards is answered.
// Which mutants are malformed is decided by DecodedMessage::Decode with the same
// limits (the door's own definition), so the counter must match exactly.
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "common/metrics/registry.h"
#include "common/transport/inproc_transport.h"
#include "common/transport/rpc.h"
#include "tests/fuzz/fuzz_rng.h"
#include "tests/fuzz/mutator.h"
#include "tests/fuzz/wire_corpus.h"

namespace sy::fuzz {
namespace {

constexpr uint64_t kSeed = 0x5EED0002;
constexpr int kMessages = 3000;

// Receives everything sent back to the raw client and counts error replies by code.
class ReplyCounter {
 public:
  explicit ReplyCounter(transport::Transport* client) : client_(client), thread_([this] { Loop(); }) {}
  ~ReplyCounter() {
    client_->Close();
    thread_.join();
  }

  // Waits (generously: correctness, not speed) until `n` InvalidArgument replies arrived.
  bool AwaitInvalidArgument(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n] { return invalid_argument_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(60));
  }
  int invalid_argument() {
    absl::MutexLock lock(&mu_);
    return invalid_argument_;
  }

 private:
  void Loop() {
    for (;;) {
      auto message = client_->Receive(absl::Now() + absl::Seconds(1));
      if (message.status().code() == absl::StatusCode::kCancelled) return;
      if (!message.ok()) continue;
      auto decoded = transport::DecodedMessage::Decode(*std::move(message), {});
      if (decoded.ok() && decoded->envelope().getStatus().getCode() == proto::ErrorCode::INVALID_ARGUMENT) {
        absl::MutexLock lock(&mu_);
        ++invalid_argument_;
      }
    }
  }

  transport::Transport* client_;
  absl::Mutex mu_;
  int invalid_argument_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

TEST(RpcFuzz, MalformedFloodIsCountedAnsweredAndServingGoesOn) {
  transport::InProcNetwork net;
  metrics::Registry registry;
  std::atomic<int> handled{0};
  auto server_transport = *net.CreateTransport("server");
  ASSERT_TRUE(server_transport->Bind("inproc://server").ok());
  transport::RpcOptions options;
  options.metrics = &registry;
  auto server = *transport::RpcNode::Create(
      std::move(server_transport), options, [&handled](transport::DecodedMessage, transport::Responder responder) {
        ++handled;
        capnp::MallocMessageBuilder b;
        b.initRoot<proto::Envelope>().setKind(proto::MessageKind::PING);
        responder.Reply(b);
      });
  auto raw_client = *net.CreateTransport("raw-client");
  ASSERT_TRUE(raw_client->Connect("server", "inproc://server").ok());
  ReplyCounter replies(raw_client.get());

  const std::vector<proto::MessageKind> kinds = AllKinds();
  int rejected = 0;
  for (uint64_t i = 0; i < kMessages; ++i) {
    FuzzRng rng(kSeed, i);
    transport::Message message = ValidMessage(kinds[rng.Below(kinds.size())], rng.OneIn(2), rng);
    message.header = FrameOf(Mutate(HeaderBytes(message), rng), rng.OneIn(4));
    if (rng.OneIn(8) && !message.data.empty()) message.data.pop_back();
    message.address = {"server", transport::Route::kConnected};
    const bool refused = !transport::DecodedMessage::Decode(message, options.limits).ok();
    rejected += refused;
    ASSERT_TRUE(raw_client->Send(std::move(message), absl::Now() + absl::Seconds(30)).ok())
        << "seed=" << kSeed << " iteration=" << i;
  }
  ASSERT_GT(rejected, kMessages / 10);
  ASSERT_TRUE(replies.AwaitInvalidArgument(rejected)) << replies.invalid_argument() << " of " << rejected;

  // A well-formed request from a proper client is still served.
  auto client_transport = *net.CreateTransport("client");
  ASSERT_TRUE(client_transport->Connect("server", "inproc://server").ok());
  auto client = *transport::RpcNode::Create(std::move(client_transport), {}, nullptr);
  const int handled_before = handled.load();
  capnp::MallocMessageBuilder b;
  b.initRoot<proto::Envelope>().setKind(proto::MessageKind::PING);
  auto reply = client->Call({"server"}, b, {}, absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(handled.load(), handled_before + 1);

  const double malformed =
      registry.GetCounter("sy_rpc_malformed_total", "", {{"node", "server"}}).value();
  EXPECT_EQ(malformed, rejected);
  // The handler answers OK, so every InvalidArgument reply is a refusal at the door.
  EXPECT_EQ(replies.invalid_argument(), rejected);
  client->Close();
  server->Close();
}

// Regression: a request refused at the door (here a tensor frame shorter than its
// descriptor) used to be answered with request id 0, so the caller's pending call
// never matched it and ran into its deadline. It must end with InvalidArgument.
TEST(RpcFuzz, RequestRefusedAtTheDoorFailsTheCallInsteadOfTimingOut) {
  transport::InProcNetwork net;
  auto server_transport = *net.CreateTransport("server");
  ASSERT_TRUE(server_transport->Bind("inproc://server").ok());
  auto server = *transport::RpcNode::Create(std::move(server_transport), {},
                                            [](transport::DecodedMessage, transport::Responder responder) {
                                              responder.Fail(absl::InternalError("handler must not run"));
                                            });
  auto client_transport = *net.CreateTransport("client");
  ASSERT_TRUE(client_transport->Connect("server", "inproc://server").ok());
  transport::RpcOptions options;
  options.max_attempts = 1;
  auto client = *transport::RpcNode::Create(std::move(client_transport), options, nullptr);
  capnp::MallocMessageBuilder b;
  auto env = b.initRoot<proto::Envelope>();
  env.setKind(proto::MessageKind::PING);
  transport::SetTensor(env.initTensors(1)[0], "x", proto::TensorRole::OTHER, proto::DType::F32, {4});
  auto reply = client->Call({"server"}, b, {FrameOf("short")}, absl::Now() + absl::Seconds(60));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument) << reply.status();
  client->Close();
  server->Close();
}

}  // namespace
}  // namespace sy::fuzz
