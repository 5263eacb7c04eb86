// StepClient::GatherNorms against in-process hosts: the replicas of an expert
// report the same gradient segment, which the leader must count once (a double
// count would change the clip scale) and refuse when the replicas disagree.
#include "services/trainer/step_client.h"

#include <gtest/gtest.h>

#include <capnp/message.h>

#include <memory>
#include <string>
#include <vector>

#include "common/transport/inproc_transport.h"
#include "common/transport/rpc.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/step_wire.h"
#include "tests/support/inproc_node.h"

namespace sy::trainer {
namespace {

struct Segment {
  uint32_t param = 0;
  int expert = -1;
  double sum_squares = 0;
};

// A host that answers a norm gather with fixed segments.
struct NormHost {
  std::vector<Segment> segments;
  std::unique_ptr<transport::RpcNode> node;

  void Start(transport::InProcNetwork& net, const std::string& name) {
    auto rpc = test_support::ServeInProc(
        net, name, [this](transport::DecodedMessage request, transport::Responder responder) {
          capnp::MallocMessageBuilder reply;
          auto body = cluster::InitEnvelope(reply, request.envelope().getKind())
                          .initBody()
                          .initAs<proto::expert::StepReply>();
          auto list = body.initSegments(static_cast<unsigned>(segments.size()));
          for (size_t i = 0; i < segments.size(); ++i) {
            list[static_cast<unsigned>(i)].setParam(segments[i].param);
            list[static_cast<unsigned>(i)].setExpert(segments[i].expert);
            list[static_cast<unsigned>(i)].setSumSquares(segments[i].sum_squares);
          }
          responder.Reply(reply);
        });
    ASSERT_TRUE(rpc.ok()) << rpc.status();
    node = *std::move(rpc);
  }
};

class GatherNormsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int h = 0; h < 3; ++h) hosts_[h].Start(net_, "host-" + std::to_string(h));
    auto t = net_.CreateTransport("trainer-0");
    ASSERT_TRUE(t.ok()) << t.status();
    std::vector<std::string> names;
    for (int h = 0; h < 3; ++h) {
      names.push_back("host-" + std::to_string(h));
      ASSERT_TRUE((*t)->Connect(names.back(), "inproc://" + names.back()).ok());
    }
    auto rpc = transport::RpcNode::Create(*std::move(t), {}, nullptr);
    ASSERT_TRUE(rpc.ok()) << rpc.status();
    trainer_ = *std::move(rpc);
    steps_ = std::make_unique<StepClient>(trainer_.get(), names, 4, "trainer-0", absl::Seconds(10));
  }

  transport::InProcNetwork net_;
  NormHost hosts_[3];
  std::unique_ptr<transport::RpcNode> trainer_;
  std::unique_ptr<StepClient> steps_;
};

TEST_F(GatherNormsTest, AReplicatedSegmentCountsOnce) {
  hosts_[0].segments = {{0, -1, 4.0}, {5, 0, 1.5}, {5, 1, 2.5}};
  hosts_[1].segments = {{5, 1, 2.5}, {6, 2, 0.25}};  // replica of expert 1
  hosts_[2].segments = {{5, 1, 2.5}};                // a third replica
  absl::StatusOr<GatherResult> gathered = steps_->GatherNorms(3);
  ASSERT_TRUE(gathered.ok()) << gathered.status();
  const std::map<std::pair<uint32_t, int>, double> expected = {
      {{0, -1}, 4.0}, {{5, 0}, 1.5}, {{5, 1}, 2.5}, {{6, 2}, 0.25}};
  EXPECT_EQ(gathered->squares, expected);
}

TEST_F(GatherNormsTest, DivergedReplicasAreAnInternalErrorNamingBothHosts) {
  hosts_[0].segments = {{5, 1, 2.5}};
  hosts_[1].segments = {{6, 2, 0.25}};
  hosts_[2].segments = {{5, 1, 2.5000000000000004}};  // one ulp apart
  absl::StatusOr<GatherResult> gathered = steps_->GatherNorms(3);
  ASSERT_FALSE(gathered.ok());
  EXPECT_EQ(gathered.status().code(), absl::StatusCode::kInternal) << gathered.status();
  for (const char* part : {"step 3", "replicas of parameter 5 expert 1 diverged", "host 0", "host 2"}) {
    EXPECT_NE(gathered.status().message().find(part), absl::string_view::npos) << part << ": " << gathered.status();
  }
}

}  // namespace
}  // namespace sy::trainer
