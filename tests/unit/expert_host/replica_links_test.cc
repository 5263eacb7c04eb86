// ReplicaLinks' resends: replica gradients a peer refuses because its request budget
// is full are sent again until accepted (the peer's step waits for them), other
// refusals are not, and resends stop at the timeout. The peer is a fake host on the
// in-process network that refuses the first N deliveries.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/actor/runtime.h"
#include "common/transport/inproc_transport.h"
#include "common/transport/rpc.h"
#include "proto/envelope.capnp.h"
#include "proto/expert.capnp.h"
#include "services/cluster/actor_key.h"
#include "services/expert_host/replica_links.h"
#include "tests/support/inproc_node.h"

namespace sy::expert_host {
namespace {

const cluster::ActorKey kExpert = cluster::ActorKey::Expert(1, 3);
const std::vector<std::vector<float>> kGrads = {{1.5f, -2.0f, 3.25f}, {0.5f, 4.0f, -1.0f}};
const std::vector<cluster::MicroBatchSpan> kSpans = {{0, 2}, {2, 3}};

// host-1: refuses the first `refusals` replica-gradient deliveries with `refusal`,
// then accepts and keeps what it got.
class FakePeer {
 public:
  FakePeer(int refusals, absl::Status refusal) : refusals_(refusals), refusal_(std::move(refusal)) {}

  void Handle(transport::DecodedMessage request, transport::Responder responder) {
    absl::MutexLock lock(&mu_);
    ++deliveries_;
    if (deliveries_ <= refusals_) {
      responder.Fail(refusal_);
      return;
    }
    auto body = request.Body<proto::expert::ReplicaGradientsRequest>();
    ASSERT_TRUE(body.ok()) << body.status();
    step_ = body->getStep();
    sender_ = body->getSender().cStr();
    for (uint32_t m : body->getMicroBatches()) first_.push_back(m);
    for (uint32_t e : body->getEnds()) end_.push_back(e);
    for (size_t i = 0; i < request.message().data.size(); ++i) {
      const transport::Frame& f = request.data(i);
      std::vector<float> values(f.size() / sizeof(float));
      std::memcpy(values.data(), f.data(), values.size() * sizeof(float));
      grads_.push_back(std::move(values));
    }
    accepted_ = true;
    capnp::MallocMessageBuilder reply;
    reply.initRoot<proto::Envelope>();
    responder.Reply(reply);
  }

  // Deliveries so far, once `settle` passed without a new one (or the accepted one came).
  int DeliveriesAfter(absl::Duration settle) {
    absl::MutexLock lock(&mu_);
    int seen = -1;
    while (seen != deliveries_ && !accepted_) {
      seen = deliveries_;
      mu_.AwaitWithTimeout(absl::Condition(+[](bool* a) { return *a; }, &accepted_), settle);
    }
    return deliveries_;
  }

  absl::Mutex mu_;
  const int refusals_;
  const absl::Status refusal_;
  int deliveries_ ABSL_GUARDED_BY(mu_) = 0;
  bool accepted_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t step_ ABSL_GUARDED_BY(mu_) = 0;
  std::string sender_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> first_ ABSL_GUARDED_BY(mu_), end_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<float>> grads_ ABSL_GUARDED_BY(mu_);
};

class ReplicaLinksTest : public ::testing::Test {
 protected:
  // host-0's links to a fake host-1 that refuses `refusals` times with `refusal`.
  void Start(int refusals, absl::Status refusal, absl::Duration timeout) {
    peer_ = std::make_unique<FakePeer>(refusals, std::move(refusal));
    FakePeer* peer = peer_.get();
    auto server = test_support::ServeInProc(
        net_, "host-1", [peer](transport::DecodedMessage r, transport::Responder responder) {
          peer->Handle(std::move(r), std::move(responder));
        });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto transport = net_.CreateTransport("host-0");
    ASSERT_TRUE(transport.ok()) << transport.status();
    auto sender = transport::RpcNode::Create(*std::move(transport), {}, nullptr);
    ASSERT_TRUE(sender.ok()) << sender.status();
    sender_ = *std::move(sender);
    links_ = std::make_unique<ReplicaLinks>("host-0", timeout, &runtime_);
    links_->set_rpc(sender_.get());
    links_->Connect("host-1", "inproc://host-1");
  }

  void TearDown() override {
    if (links_ != nullptr) links_->set_rpc(nullptr);
    if (sender_ != nullptr) sender_->Close();
    if (server_ != nullptr) server_->Close();
    runtime_.Shutdown(actor::Runtime::ShutdownMode::kCancel);
  }

  transport::InProcNetwork net_;
  actor::Runtime runtime_{1};
  std::unique_ptr<FakePeer> peer_;
  std::unique_ptr<transport::RpcNode> server_, sender_;
  std::unique_ptr<ReplicaLinks> links_;
};

TEST_F(ReplicaLinksTest, AFullBudgetRefusalIsSentAgainUntilAccepted) {
  ASSERT_NO_FATAL_FAILURE(Start(3, absl::ResourceExhaustedError("requests held: 4096 of 4096"), absl::Seconds(30)));
  links_->Send(kExpert, "host-1", 7, 2, kSpans, kGrads);
  EXPECT_EQ(peer_->DeliveriesAfter(absl::Seconds(10)), 4) << "three refusals, then the accepted delivery";
  absl::MutexLock lock(&peer_->mu_);
  ASSERT_TRUE(peer_->accepted_);
  EXPECT_EQ(peer_->step_, 7u);
  EXPECT_EQ(peer_->sender_, "host-0");
  EXPECT_EQ(peer_->first_, (std::vector<uint32_t>{0, 2}));
  EXPECT_EQ(peer_->end_, (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(peer_->grads_, kGrads) << "the resent message carries the same gradients";
}

TEST_F(ReplicaLinksTest, OtherRefusalsAreNotSentAgain) {
  ASSERT_NO_FATAL_FAILURE(Start(1, absl::InvalidArgumentError("not a replica"), absl::Seconds(30)));
  links_->Send(kExpert, "host-1", 7, 2, kSpans, kGrads);
  EXPECT_EQ(peer_->DeliveriesAfter(absl::Milliseconds(500)), 1);
  absl::MutexLock lock(&peer_->mu_);
  EXPECT_FALSE(peer_->accepted_);
}

TEST_F(ReplicaLinksTest, ResendsStopAtTheTimeout) {
  ASSERT_NO_FATAL_FAILURE(Start(1 << 20, absl::ResourceExhaustedError("requests held"), absl::Milliseconds(150)));
  links_->Send(kExpert, "host-1", 7, 2, kSpans, kGrads);
  const int deliveries = peer_->DeliveriesAfter(absl::Milliseconds(600));
  EXPECT_GT(deliveries, 1) << "refused for a full budget: sent again";
  EXPECT_LE(deliveries, 10) << "pauses grow (5, 10, 20... ms) and end at the 150 ms timeout";
  absl::MutexLock lock(&peer_->mu_);
  EXPECT_FALSE(peer_->accepted_);
}

}  // namespace
}  // namespace sy::expert_host
