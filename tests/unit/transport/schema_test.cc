// The service schemas are usable end to end: bodies of each service (expert, parameter,
// coordinator, checkpoint, admin) ride in an envelope, pass the door checks and read back.
#include <gtest/gtest.h>

#include "common/transport/envelope_codec.h"
#include "proto/admin.capnp.h"
#include "proto/checkpoint.capnp.h"
#include "proto/coordinator.capnp.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"

namespace sy::transport {
namespace {

// Builds an envelope of `kind` whose body `fill` initialises, and decodes it again.
template <typename T, typename Fill>
DecodedMessage RoundTrip(proto::MessageKind kind, Fill fill) {
  capnp::MallocMessageBuilder builder;
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setSender("node");
  envelope.setRequestId(1);
  envelope.setKind(kind);
  fill(envelope.getBody().initAs<T>());
  auto decoded = DecodedMessage::Decode(Message({"peer"}, EncodeHeader(builder)), {});
  EXPECT_TRUE(decoded.ok()) << decoded.status();
  return *std::move(decoded);
}

TEST(Schemas, ExpertStepCommitAndStateStream) {
  auto commit = RoundTrip<proto::expert::StepRequest>(proto::MessageKind::STEP_COMMIT, [](auto body) {
    auto phase = body.initCommit();
    phase.setStep(9);
    auto mbs = phase.initMicroBatches(3);
    for (unsigned i = 0; i < 3; ++i) mbs.set(i, i * 2);
    phase.setTotalMicroBatches(8);
  });
  auto commit_body = commit.Body<proto::expert::StepRequest>();
  ASSERT_TRUE(commit_body.ok());
  ASSERT_TRUE(commit_body->isCommit());
  EXPECT_EQ(commit_body->getCommit().getMicroBatches()[2], 4u);

  auto stream = RoundTrip<proto::expert::StateStreamRequest>(proto::MessageKind::STATE_STREAM, [](auto body) {
    auto key = body.initActor().initExpert();
    key.setSwitchLayer(1);
    key.setExpert(5);
    body.initStreamOut().setDestination("host-2");
  });
  auto stream_body = stream.Body<proto::expert::StateStreamRequest>();
  ASSERT_TRUE(stream_body.ok());
  ASSERT_TRUE(stream_body->isStreamOut());
  EXPECT_EQ(std::string(stream_body->getStreamOut().getDestination().cStr()), "host-2");
  EXPECT_EQ(stream_body->getActor().getExpert().getExpert(), 5u);
}

TEST(Schemas, ParameterCoordinatorCheckpointAdmin) {
  auto push = RoundTrip<proto::parameter::PushRequest>(proto::MessageKind::PARAM_PUSH, [](auto body) {
    body.setShard(3);
    body.setElementCount(1024);
  });
  EXPECT_EQ(push.Body<proto::parameter::PushRequest>()->getElementCount(), 1024u);

  auto placement = RoundTrip<proto::coordinator::PlacementRequest>(proto::MessageKind::PLACEMENT, [](auto body) {
    auto table = body.initUpdate();
    table.setEpoch(12);
    auto entry = table.initEntries(1)[0];
    entry.initActor().setDenseShard(2);
    entry.initReplicas(2)[1].setNodeId("host-9");
  });
  auto table = placement.Body<proto::coordinator::PlacementRequest>()->getUpdate();
  EXPECT_EQ(table.getEpoch(), 12u);
  EXPECT_EQ(std::string(table.getEntries()[0].getReplicas()[1].getNodeId().cStr()), "host-9");

  auto manifest = RoundTrip<proto::checkpoint::ManifestReply>(proto::MessageKind::CHECKPOINT_MANIFEST, [](auto body) {
    auto m = body.initManifests(1)[0];
    m.setCheckpointId(4);
    m.initActors(2)[1].setChunkCount(7);
  });
  EXPECT_EQ(manifest.Body<proto::checkpoint::ManifestReply>()->getManifests()[0].getActors()[1].getChunkCount(), 7u);

  auto admin = RoundTrip<proto::admin::AdminRequest>(proto::MessageKind::ADMIN, [](auto body) {
    body.initFaults().setSpec("drop=0.1,seed=7");
  });
  auto request = admin.Body<proto::admin::AdminRequest>();
  ASSERT_TRUE(request.ok());
  ASSERT_EQ(request->which(), proto::admin::AdminRequest::FAULTS);
  EXPECT_EQ(std::string(request->getFaults().getSpec().cStr()), "drop=0.1,seed=7");
}

TEST(Schemas, BodyOfTheWrongShapeIsInvalidArgument) {
  capnp::MallocMessageBuilder builder;
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setSender("node");
  envelope.setRequestId(1);
  envelope.setKind(proto::MessageKind::ADMIN);
  envelope.getBody().initAs<capnp::List<uint64_t>>(4);  // a list where a struct belongs
  auto decoded = DecodedMessage::Decode(Message({"peer"}, EncodeHeader(builder)), {});
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->Body<proto::admin::AdminRequest>().status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sy::transport
