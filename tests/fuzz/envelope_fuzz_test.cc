// Mutation fuzzing of the envelope decoder (DecodedMessage::Decode) and of the
// Body<T>() accessors: starting from valid messages of every kind, header bytes,
// frame counts and frame sizes are mutated; a mutant must be refused with
// InvalidArgument, or accepted with every tensor descriptor matching its frame and
// a body that reads completely without an exception. Fixed seeds: a failure
// prints seed, iteration and a hex dump of the header.
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/transport/envelope_codec.h"
#include "proto/expert.capnp.h"
#include "tests/fuzz/fuzz_rng.h"
#include "tests/fuzz/mutator.h"
#include "tests/fuzz/wire_corpus.h"

namespace sy::fuzz {
namespace {

constexpr uint64_t kSeed = 0x5EED0001;
constexpr int kIterations = 20000;

// Shape product times dtype size, or -1 when the dtype is unknown or a prefix of the
// shape exceeds `limit` (the decoder's rule: no prefix may exceed the message limit).
int64_t ExpectedBytes(proto::TensorDesc::Reader desc, uint64_t limit) {
  const size_t element = transport::DTypeSize(desc.getDtype());
  if (element == 0) return -1;
  unsigned __int128 bytes = element;
  for (uint64_t dim : desc.getShape()) {
    if (dim != 0 && bytes * dim > limit) return -1;
    bytes *= dim;
  }
  return static_cast<int64_t>(bytes);
}

// What must hold for any message Decode accepted; empty when it does.
std::string AcceptedInvariantViolation(const transport::DecodedMessage& decoded, const transport::EnvelopeLimits& limits) {
  auto tensors = decoded.envelope().getTensors();
  if (tensors.size() != decoded.message().data.size()) return "tensor count differs from frame count";
  if (tensors.size() > limits.max_tensors) return "too many tensors accepted";
  for (unsigned i = 0; i < tensors.size(); ++i) {
    if (tensors[i].getShape().size() > limits.max_rank) return absl::StrCat("tensor ", i, ": rank over the limit");
    const int64_t expected = ExpectedBytes(tensors[i], limits.max_message_bytes);
    if (expected < 0 || static_cast<uint64_t>(expected) != tensors[i].getByteLength()) {
      return absl::StrCat("tensor ", i, ": shape/dtype do not give byteLength");
    }
    if (tensors[i].getByteLength() != decoded.data(i).size()) return absl::StrCat("tensor ", i, ": frame size differs");
  }
  const auto sender = decoded.envelope().getSender();
  if (sender.size() == 0 || sender.size() > limits.max_sender_bytes) return "bad sender accepted";
  return "";
}

// Frame-level edits: drop, add, empty, grow or shrink a data frame.
void MutateFrames(std::vector<transport::Frame>& frames, FuzzRng& rng) {
  const uint64_t choice = rng.Below(frames.empty() ? 1 : 5);
  if (choice == 0) {
    frames.insert(frames.begin() + static_cast<long>(rng.Below(frames.size() + 1)),
                  FrameOf(std::string(rng.Below(3) * 4, 'x')));
    return;
  }
  const size_t i = rng.Below(frames.size());
  const std::string bytes(reinterpret_cast<const char*>(frames[i].data()), frames[i].size());
  switch (choice) {
    case 1: frames.erase(frames.begin() + static_cast<long>(i)); return;
    case 2: frames[i] = transport::Frame(); return;
    case 3: frames[i] = FrameOf(bytes + std::string(1 + rng.Below(8), '\1')); return;
    default: frames[i] = FrameOf(bytes.substr(0, rng.Below(bytes.size() + 1))); return;
  }
}

struct Tally {
  int accepted = 0, rejected = 0, body_refused = 0;
};

// Decodes one candidate and checks the contract; returns false (after reporting) on a violation.
bool CheckOne(transport::Message message, const transport::EnvelopeLimits& limits, const std::string& where,
              Tally& tally) {
  const std::string header = HeaderBytes(message);
  const std::string dump = absl::StrCat(where, " frames=", message.data.size(), " header:\n", HexDump(header));
  try {
    auto decoded = transport::DecodedMessage::Decode(std::move(message), limits);
    if (!decoded.ok()) {
      ++tally.rejected;
      EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << decoded.status() << "\n" << dump;
      return decoded.status().code() == absl::StatusCode::kInvalidArgument;
    }
    ++tally.accepted;
    const std::string violation = AcceptedInvariantViolation(*decoded, limits);
    EXPECT_EQ(violation, "") << dump;
    auto body = ReadBody(*decoded);
    if (!body.ok()) {
      ++tally.body_refused;
      EXPECT_EQ(body.status().code(), absl::StatusCode::kInvalidArgument) << body.status() << "\n" << dump;
      return body.status().code() == absl::StatusCode::kInvalidArgument && violation.empty();
    }
    return violation.empty();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "exception escaped: " << e.what() << "\n" << dump;
  } catch (...) {
    ADD_FAILURE() << "non-std exception escaped\n" << dump;
  }
  return false;
}

TEST(EnvelopeFuzz, ValidMessagesOfEveryKindDecodeAndReadCompletely) {
  const transport::EnvelopeLimits limits;
  for (proto::MessageKind kind : AllKinds()) {
    for (bool reply : {false, true}) {
      for (uint64_t i = 0; i < 20; ++i) {
        FuzzRng rng(kSeed, i);
        transport::Message message = ValidMessage(kind, reply, rng);
        auto decoded = transport::DecodedMessage::Decode(message, limits);
        ASSERT_TRUE(decoded.ok()) << decoded.status() << " kind " << static_cast<int>(kind) << "\n"
                                  << HexDump(HeaderBytes(message));
        auto body = ReadBody(*decoded);
        const bool error_reply = reply && decoded->envelope().getStatus().getCode() != proto::ErrorCode::OK;
        if (kind != proto::MessageKind::PING && !error_reply) {
          ASSERT_TRUE(body.ok()) << body.status() << " kind " << static_cast<int>(kind);
          EXPECT_GT(*body, 1u);
        }
      }
    }
  }
}

TEST(EnvelopeFuzz, MutatedMessagesAreRefusedOrConsistent) {
  const transport::EnvelopeLimits limits;
  const std::vector<proto::MessageKind> kinds = AllKinds();
  Tally tally;
  for (uint64_t i = 0; i < kIterations; ++i) {
    FuzzRng rng(kSeed, i);
    transport::Message message = ValidMessage(kinds[rng.Below(kinds.size())], rng.OneIn(2), rng);
    const uint64_t target = rng.Below(10);
    if (target < 8) message.header = FrameOf(Mutate(HeaderBytes(message), rng), rng.OneIn(4));
    if (target >= 7) MutateFrames(message.data, rng);
    const std::string where = absl::StrCat("seed=", kSeed, " iteration=", i);
    if (!CheckOne(std::move(message), limits, where, tally)) break;
  }
  std::cout << "accepted " << tally.accepted << ", rejected " << tally.rejected << ", body refused "
            << tally.body_refused << "\n";
  // The mutator must reach both sides of the door (else this test proves nothing).
  EXPECT_GT(tally.rejected, kIterations / 10);
  EXPECT_GT(tally.accepted, kIterations / 50);
  EXPECT_GT(tally.body_refused, 0);
}

// Descriptors that lie (unknown dtype values, huge or overflowing dims, ranks over the
// limit, byteLength or frame sizes off by a little) built with the capnp builders, so
// every one reaches the tensor checks: accepted exactly when all of them agree.
TEST(EnvelopeFuzz, LyingTensorDescriptorsAreRefusedExactly) {
  const transport::EnvelopeLimits limits;
  int accepted = 0;
  for (uint64_t i = 0; i < 5000; ++i) {
    FuzzRng rng(kSeed + 1, i);
    capnp::MallocMessageBuilder builder;
    auto env = builder.initRoot<proto::Envelope>();
    env.setSender("trainer-0");
    env.setRequestId(1);
    env.setKind(proto::MessageKind::PING);
    const unsigned count = static_cast<unsigned>(rng.Below(4));
    auto tensors = env.initTensors(count);
    std::vector<transport::Frame> frames;
    bool valid = true;
    for (unsigned t = 0; t < count; ++t) {
      auto desc = tensors[t];
      desc.setDtype(static_cast<proto::DType>(rng.Below(3)));
      auto shape = desc.initShape(static_cast<unsigned>(rng.Below(11)));
      for (unsigned d = 0; d < shape.size(); ++d) {
        const uint64_t kind = rng.Below(8);
        shape.set(d, kind == 0 ? 0 : kind == 1 ? (uint64_t{1} << 62) + rng.Below(4) : kind == 2 ? ~uint64_t{0} : 1 + rng.Below(3));
      }
      const int64_t expected = ExpectedBytes(desc.asReader(), limits.max_message_bytes);
      const bool honest = expected >= 0 && shape.size() <= limits.max_rank && expected < 4096;
      uint64_t length = honest ? static_cast<uint64_t>(expected) : rng.Below(64);
      if (rng.OneIn(4)) length += 1 + rng.Below(3);
      desc.setByteLength(length);
      size_t frame = length;
      if (rng.OneIn(4)) frame = rng.Below(length + 2);
      frames.push_back(FrameOf(std::string(frame, '\0')));
      valid = valid && honest && length == static_cast<uint64_t>(expected) && frame == length;
    }
    if (rng.OneIn(10)) {
      frames.push_back(FrameOf("abcd"));
      valid = false;
    }
    transport::Message message({"host-0"}, transport::EncodeHeader(builder), std::move(frames));
    const std::string dump = HexDump(HeaderBytes(message));
    auto decoded = transport::DecodedMessage::Decode(std::move(message), limits);
    ASSERT_EQ(decoded.ok(), valid) << "seed=" << kSeed + 1 << " iteration=" << i << " " << decoded.status() << "\n"
                                   << dump;
    if (!decoded.ok()) {
      ASSERT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << decoded.status();
    }
    accepted += decoded.ok();
  }
  EXPECT_GT(accepted, 100);
  EXPECT_LT(accepted, 4900);
}

// Overwrites the NUL after the first occurrence of `text` in the header.
transport::Frame WithoutNul(const transport::Message& message, const std::string& text) {
  std::string bytes = HeaderBytes(message);
  const size_t at = bytes.find(text + '\0');
  EXPECT_NE(at, std::string::npos);
  if (at != std::string::npos) bytes[at + text.size()] = 'x';
  return FrameOf(bytes);
}

// Regression (found by MutatedMessagesAreRefusedOrConsistent): a text whose NUL
// terminator is gone passes totalSize() and used to be accepted by Decode and
// Body<T>(); reading it later threw. The door now reads every field first.
TEST(EnvelopeFuzz, TextWithoutNulIsRefusedAtTheDoor) {
  const transport::EnvelopeLimits limits;
  capnp::MallocMessageBuilder builder;
  auto env = builder.initRoot<proto::Envelope>();
  env.setSender("trainer-0");
  env.setRequestId(1);
  env.setKind(proto::MessageKind::STEP_COMMIT);
  env.initBody().initAs<proto::expert::StepRequest>().initCommit().setTrainer("trainerQ");
  transport::SetTensor(env.initTensors(1)[0], "bucketZ", proto::TensorRole::OTHER, proto::DType::F32, {1});
  const transport::Message valid({"host-0"}, transport::EncodeHeader(builder), {FrameOf("four")});

  transport::Message body_text = valid;
  body_text.header = WithoutNul(valid, "trainerQ");
  auto decoded = transport::DecodedMessage::Decode(body_text, limits);
  ASSERT_TRUE(decoded.ok()) << decoded.status();  // the envelope itself is sound
  auto body = decoded->Body<proto::expert::StepRequest>();
  EXPECT_EQ(body.status().code(), absl::StatusCode::kInvalidArgument) << body.status();

  transport::Message tensor_name = valid;
  tensor_name.header = WithoutNul(valid, "bucketZ");
  EXPECT_EQ(transport::DecodedMessage::Decode(tensor_name, limits).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Inputs a libFuzzer run found (tests/fuzz/regressions/envelope/, libFuzzer input
// format) must pass the same checks as the mutants above. The first one: the door's
// own checks spent the traversal budget, so a handler's single read of a body
// accepted by Body<T>() threw; the checks now use a reader of their own.
TEST(EnvelopeFuzz, RegressionInputsFromLibFuzzer) {
  const transport::EnvelopeLimits limits;
  Tally tally;
  int inputs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SY_FUZZ_REGRESSIONS "/envelope")) {
    std::ifstream file(entry.path(), std::ios::binary);
    const std::string input((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    auto message = MessageFromFuzzInput(input);
    ASSERT_TRUE(message.has_value()) << entry.path();
    EXPECT_TRUE(CheckOne(*std::move(message), limits, entry.path().string(), tally));
    ++inputs;
  }
  EXPECT_GT(inputs, 0);
}

}  // namespace
}  // namespace sy::fuzz
