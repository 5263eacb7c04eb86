// Envelope encode/decode with tensor frames, and the door checks of DecodedMessage.
#include <cstring>

#include <gtest/gtest.h>

#include "common/base/philox.h"
#include "common/transport/envelope_codec.h"
#include "proto/expert.capnp.h"
#include "tests/unit/transport/testing.h"

namespace sy::transport {
namespace {

using ::sy::transport::testing::F32Frame;

// An expert forward request with an f32 activation frame and a bf16 copy of it.
Message ForwardRequest(size_t tokens, size_t d_model, int64_t ttl_ms = 1234) {
  capnp::MallocMessageBuilder builder;
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setSender("trainer-0");
  envelope.setRequestId(42);
  envelope.setPlacementEpoch(7);
  envelope.setTtlMs(ttl_ms);
  envelope.setKind(proto::MessageKind::EXPERT_FORWARD);
  auto tensors = envelope.initTensors(2);
  SetTensor(tensors[0], "x", proto::TensorRole::ACTIVATIONS, proto::DType::F32, {tokens, d_model});
  SetTensor(tensors[1], "x_bf16", proto::TensorRole::ACTIVATIONS, proto::DType::BF16, {tokens, d_model});
  auto body = envelope.getBody().initAs<proto::expert::ExpertForwardRequest>();
  body.initBucket().setExpert(3);
  body.setTokenCount(static_cast<uint32_t>(tokens));
  body.setDModel(static_cast<uint32_t>(d_model));
  std::vector<Frame> data = {F32Frame(tokens * d_model, 0), Frame::FromVector(std::vector<uint8_t>(tokens * d_model * 2, 1))};
  return Message{{"host-1"}, EncodeHeader(builder), std::move(data)};
}

TEST(Envelope, EncodeDecodeWithF32AndBf16Frames) {
  Message message = ForwardRequest(16, 8);
  const uint8_t* data_before = message.data[0].data();
  auto decoded = DecodedMessage::Decode(std::move(message), {});
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  auto envelope = decoded->envelope();
  EXPECT_EQ(std::string(envelope.getSender().cStr()), "trainer-0");
  EXPECT_EQ(envelope.getRequestId(), 42u);
  EXPECT_EQ(envelope.getPlacementEpoch(), 7u);
  EXPECT_EQ(envelope.getKind(), proto::MessageKind::EXPERT_FORWARD);
  ASSERT_EQ(envelope.getTensors().size(), 2u);
  EXPECT_EQ(envelope.getTensors()[0].getDtype(), proto::DType::F32);
  EXPECT_EQ(envelope.getTensors()[0].getByteLength(), 16u * 8 * 4);
  EXPECT_EQ(envelope.getTensors()[1].getDtype(), proto::DType::BF16);
  EXPECT_EQ(envelope.getTensors()[1].getByteLength(), 16u * 8 * 2);
  EXPECT_EQ(decoded->data(0).data(), data_before) << "tensor bytes must not be copied";
  float third;
  std::memcpy(&third, decoded->data(0).data() + 8, 4);
  EXPECT_EQ(third, 2.0f);
  auto body = decoded->Body<proto::expert::ExpertForwardRequest>();
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(body->getBucket().getExpert(), 3u);
  EXPECT_EQ(body->getTokenCount(), 16u);
}

// The deadline travels as a time to live, so it holds on the receiver's clock whatever
// the sender's clock says; a hostile one is capped, a negative one refused.
TEST(Envelope, TimeToLiveBecomesALocalDeadlineCappedByTheLimits) {
  const absl::Time before = absl::Now();
  auto decoded = DecodedMessage::Decode(ForwardRequest(4, 8, 1234), {});
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_GE(decoded->deadline(), before + absl::Milliseconds(1234));
  EXPECT_LE(decoded->deadline(), absl::Now() + absl::Milliseconds(1234));

  auto none = DecodedMessage::Decode(ForwardRequest(4, 8, 0), {});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->deadline(), absl::InfiniteFuture());

  EnvelopeLimits limits;
  limits.max_ttl = absl::Seconds(5);
  auto far = DecodedMessage::Decode(ForwardRequest(4, 8, int64_t{1} << 50), limits);
  ASSERT_TRUE(far.ok()) << far.status();
  EXPECT_LE(far->deadline(), absl::Now() + absl::Seconds(5));

  auto negative = DecodedMessage::Decode(ForwardRequest(4, 8, -1), {});
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Envelope, UnalignedHeaderIsCopiedAndStillDecodes) {
  Message message = ForwardRequest(4, 4);
  std::vector<uint8_t> shifted(message.header.size() + 1);
  std::memcpy(shifted.data() + 1, message.header.data(), message.header.size());
  auto owner = std::make_shared<std::vector<uint8_t>>(std::move(shifted));
  message.header = Frame::FromShared(owner, owner->data() + 1, owner->size() - 1);
  ASSERT_NE(reinterpret_cast<uintptr_t>(message.header.data()) % 8, 0u);
  auto decoded = DecodedMessage::Decode(std::move(message), {});
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->envelope().getRequestId(), 42u);
}

TEST(Envelope, DoorChecksRejectDefectsWithInvalidArgument) {
  {  // truncated header
    Message message = ForwardRequest(4, 4);
    message.header = Frame::CopyOf(message.header.data(), message.header.size() - 8);
    EXPECT_EQ(DecodedMessage::Decode(std::move(message), {}).status().code(), absl::StatusCode::kInvalidArgument);
  }
  {  // garbage
    Message message = ForwardRequest(4, 4);
    std::vector<uint8_t> garbage(64, 0xAB);
    message.header = Frame::FromVector(garbage);
    EXPECT_EQ(DecodedMessage::Decode(std::move(message), {}).status().code(), absl::StatusCode::kInvalidArgument);
  }
  {  // wrong frame count
    Message message = ForwardRequest(4, 4);
    message.data.pop_back();
    auto status = DecodedMessage::Decode(std::move(message), {}).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find("frame count"), absl::string_view::npos) << status;
  }
  {  // declared length differs from the frame
    Message message = ForwardRequest(4, 4);
    message.data[0] = F32Frame(15, 0);
    EXPECT_EQ(DecodedMessage::Decode(std::move(message), {}).status().code(), absl::StatusCode::kInvalidArgument);
  }
  {  // oversized
    EnvelopeLimits limits;
    limits.max_message_bytes = 1000;
    EXPECT_EQ(DecodedMessage::Decode(ForwardRequest(16, 16), limits).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

// Names are read with cStr(): a text with a NUL inside would pass for its prefix
// ("host-1\0x" for "host-1", "\0" for ""), so the door refuses it, in the header and in a body.
TEST(Envelope, TextWithANulInsideIsRefusedInTheHeaderAndInTheBody) {
  const std::string sneaky("host-1\0x", 8);
  {
    capnp::MallocMessageBuilder builder;
    auto envelope = builder.initRoot<proto::Envelope>();
    envelope.setSender(capnp::Text::Reader(sneaky.data(), sneaky.size()));
    envelope.setRequestId(1);
    envelope.setKind(proto::MessageKind::PING);
    auto status = DecodedMessage::Decode(Message{{"h"}, EncodeHeader(builder)}, {}).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find("NUL"), absl::string_view::npos) << status;
  }
  capnp::MallocMessageBuilder builder;
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setSender("trainer-0");
  envelope.setRequestId(2);
  envelope.setKind(proto::MessageKind::PING);
  envelope.getBody().initAs<proto::expert::CommitPhase>().setTrainer(capnp::Text::Reader(sneaky.data(), sneaky.size()));
  absl::StatusOr<DecodedMessage> decoded = DecodedMessage::Decode(Message{{"h"}, EncodeHeader(builder)}, {});
  ASSERT_TRUE(decoded.ok()) << decoded.status();  // the body is checked when it is read
  auto body = decoded->Body<proto::expert::CommitPhase>().status();
  EXPECT_EQ(body.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(body.message().find("NUL"), absl::string_view::npos) << body;
}

TEST(Envelope, ShapeThatDisagreesWithByteLengthIsRejected) {
  capnp::MallocMessageBuilder builder;
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setSender("t");
  envelope.setRequestId(1);
  envelope.setKind(proto::MessageKind::PING);
  auto desc = envelope.initTensors(1)[0];
  SetTensor(desc, "x", proto::TensorRole::ACTIVATIONS, proto::DType::BF16, {3, 5});
  desc.setByteLength(60);  // 3*5*2 = 30 for bf16
  Message message{{"h"}, EncodeHeader(builder), {Frame::FromVector(std::vector<uint8_t>(60))}};
  auto status = DecodedMessage::Decode(std::move(message), {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("shape and dtype"), absl::string_view::npos) << status;
}

TEST(Envelope, HostileNestingIsBoundedByReaderLimits) {
  // A header nesting envelopes 40 deep in its body must be refused, not walked.
  capnp::MallocMessageBuilder builder;
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setSender("t");
  envelope.setRequestId(1);
  envelope.setKind(proto::MessageKind::PING);
  auto outer = envelope.getBody().initAs<proto::Envelope>();
  proto::Envelope::Builder level = outer;
  for (int depth = 0; depth < 40; ++depth) level = level.getBody().initAs<proto::Envelope>();
  EnvelopeLimits limits;
  limits.nesting_limit = 16;
  auto status = DecodedMessage::Decode(Message{{"h"}, EncodeHeader(builder), {}}, limits).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

TEST(Envelope, CorruptedHeadersNeverThrowAndAreRejectedOrReadable) {
  // 3000 copies of a valid header with random bytes overwritten: each one decodes to
  // either a readable envelope or InvalidArgument, never an exception or a crash.
  const Message valid = ForwardRequest(4, 4);
  const CounterRng rng(11, RngStream::kData);
  int rejected = 0;
  for (uint64_t trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> bytes(valid.header.data(), valid.header.data() + valid.header.size());
    for (uint64_t k = 0; k < 1 + trial % 8; ++k) {
      bytes[rng.Below(trial * 64 + 2 * k, bytes.size())] = static_cast<uint8_t>(rng.Bits(trial * 64 + 2 * k + 1));
    }
    Message message{valid.address, Frame::FromVector(std::move(bytes)), valid.data};
    auto decoded = DecodedMessage::Decode(std::move(message), {});
    if (decoded.ok()) {
      (void)decoded->Body<proto::expert::ExpertForwardRequest>();  // must not throw either
    } else {
      EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace sy::transport
