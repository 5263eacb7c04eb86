// The door check's walk (door_walk.h): what it refuses, and that it accepts and refuses
// exactly what a walk through capnp's dynamic API over every field does, on thousands
// of corrupted copies of real messages.
#include "common/transport/door_walk.h"

#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "common/base/philox.h"
#include "proto/admin.capnp.h"
#include "proto/envelope.capnp.h"

namespace sy::transport {
namespace {

const std::string kSneaky("host-1\0x", 8);

// The reference: every field through the dynamic API, texts checked for a NUL.
void ReferenceValue(const capnp::DynamicValue::Reader& value);
void ReferenceStruct(capnp::DynamicStruct::Reader reader) {
  for (auto field : reader.getSchema().getNonUnionFields()) {
    if (!field.getType().isAnyPointer() && !field.getType().isInterface()) ReferenceValue(reader.get(field));
  }
  KJ_IF_MAYBE(active, reader.which()) {
    if (!active->getType().isAnyPointer() && !active->getType().isInterface()) ReferenceValue(reader.get(*active));
  }
}
void ReferenceValue(const capnp::DynamicValue::Reader& value) {
  switch (value.getType()) {
    case capnp::DynamicValue::STRUCT:
      ReferenceStruct(value.as<capnp::DynamicStruct>());
      return;
    case capnp::DynamicValue::LIST:
      for (auto element : value.as<capnp::DynamicList>()) ReferenceValue(element);
      return;
    case capnp::DynamicValue::TEXT: {
      const capnp::Text::Reader text = value.as<capnp::Text>();
      KJ_REQUIRE(std::memchr(text.begin(), '\0', text.size()) == nullptr, "text with a NUL byte inside");
      return;
    }
    default:
      return;
  }
}

// Whether a walk over `words` as `schema` passes: ours, or the reference.
bool Passes(kj::ArrayPtr<const capnp::word> words, capnp::StructSchema schema, bool reference) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words.size() * 4 + 64;
  capnp::FlatArrayMessageReader reader(words, options);
  return kj::runCatchingExceptions([&] {
           auto root = reader.getRoot<capnp::AnyPointer>();
           if (reference) {
             ReferenceStruct(root.getAs<capnp::DynamicStruct>(schema));
           } else {
             ReadEveryField(root, schema);
           }
         }) == nullptr;
}

kj::Array<capnp::word> EnvelopeWithTensors(const std::string& name) {
  capnp::MallocMessageBuilder builder;
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setSender("trainer-0");
  envelope.setRequestId(7);
  envelope.initStatus().setMessage("fine");
  auto tensors = envelope.initTensors(2);
  for (int i = 0; i < 2; ++i) {
    tensors[i].setName(i == 1 ? capnp::Text::Reader(name.data(), name.size()) : capnp::Text::Reader("x"));
    auto shape = tensors[i].initShape(2);
    shape.set(0, 4);
    shape.set(1, 8);
  }
  return capnp::messageToFlatArray(builder);
}

capnp::StructSchema EnvelopeSchema() { return capnp::Schema::from<proto::Envelope>(); }

uint32_t PointerIndex(capnp::StructSchema schema, const char* field) {
  return schema.getFieldByName(field).getProto().getSlot().getOffset();
}

TEST(DoorWalk, AcceptsAWellFormedEnvelopeAndRefusesANulInANestedText) {
  kj::Array<capnp::word> good = EnvelopeWithTensors("activations");
  EXPECT_TRUE(Passes(good, EnvelopeSchema(), false));
  kj::Array<capnp::word> sneaky = EnvelopeWithTensors(kSneaky);
  EXPECT_FALSE(Passes(sneaky, EnvelopeSchema(), false));
  EXPECT_FALSE(Passes(sneaky, EnvelopeSchema(), true));
}

TEST(DoorWalk, RefusesAListWhoseElementsAreNotTheDeclaredType) {
  {  // tensors (a list of structs) holding a list of bits
    capnp::MallocMessageBuilder builder;
    auto envelope = builder.initRoot<proto::Envelope>();
    envelope.setSender("t");
    capnp::AnyStruct::Builder any = capnp::toAny(envelope);
    any.getPointerSection()[PointerIndex(EnvelopeSchema(), "tensors")].initAs<capnp::List<bool>>(9);
    kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
    EXPECT_FALSE(Passes(words, EnvelopeSchema(), false));
    EXPECT_FALSE(Passes(words, EnvelopeSchema(), true));
  }
  {  // a tensor's shape (a list of UInt64) holding a text
    capnp::MallocMessageBuilder builder;
    auto envelope = builder.initRoot<proto::Envelope>();
    envelope.setSender("t");
    auto tensor = envelope.initTensors(1)[0];
    capnp::AnyStruct::Builder any = capnp::toAny(tensor);
    any.getPointerSection()[PointerIndex(capnp::Schema::from<proto::TensorDesc>(), "shape")].setAs<capnp::Text>(
        "not a shape");
    kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
    EXPECT_FALSE(Passes(words, EnvelopeSchema(), false));
    EXPECT_FALSE(Passes(words, EnvelopeSchema(), true));
  }
}

TEST(DoorWalk, ReadsTheActiveUnionMember) {
  const capnp::StructSchema schema = capnp::Schema::from<proto::admin::AdminRequest>();
  {
    capnp::MallocMessageBuilder builder;
    builder.initRoot<proto::admin::AdminRequest>().setDrain(capnp::Text::Reader(kSneaky.data(), kSneaky.size()));
    EXPECT_FALSE(Passes(capnp::messageToFlatArray(builder), schema, false));
  }
  {
    capnp::MallocMessageBuilder builder;
    builder.initRoot<proto::admin::AdminRequest>().initFaults().setNodeId(capnp::Text::Reader(kSneaky.data(), kSneaky.size()));
    EXPECT_FALSE(Passes(capnp::messageToFlatArray(builder), schema, false));
  }
  {
    capnp::MallocMessageBuilder builder;
    auto faults = builder.initRoot<proto::admin::AdminRequest>().initFaults();
    faults.setNodeId("host-1");
    faults.setSpec("drop=0.1");
    EXPECT_TRUE(Passes(capnp::messageToFlatArray(builder), schema, false));
  }
}

// Corrupts one to four random bytes (or a random word) of real messages and checks that
// both walks agree, 3,000 times per message; a good share of the copies must be refused,
// or the corruption would prove nothing.
TEST(DoorWalk, AgreesWithTheDynamicWalkOnCorruptedMessages) {
  capnp::MallocMessageBuilder admin;
  auto faults = admin.initRoot<proto::admin::AdminRequest>().initFaults();
  faults.setNodeId("host-1");
  faults.setSpec("drop=0.5");
  const struct {
    kj::Array<capnp::word> words;
    capnp::StructSchema schema;
  } cases[] = {{EnvelopeWithTensors("activations"), EnvelopeSchema()},
               {capnp::messageToFlatArray(admin), capnp::Schema::from<proto::admin::AdminRequest>()}};
  const CounterRng rng(2024, RngStream::kData);
  uint64_t draw = 0;
  for (const auto& c : cases) {
    int refused = 0;
    constexpr int kTrials = 3000;
    for (int trial = 0; trial < kTrials; ++trial) {
      kj::Array<capnp::word> copy = kj::heapArray<capnp::word>(c.words.asPtr());
      kj::ArrayPtr<kj::byte> bytes = copy.asBytes();
      const int flips = 1 + static_cast<int>(rng.Bits(draw++) % 4);
      for (int f = 0; f < flips; ++f) {
        // Skip the segment table (the first word): it only sets sizes, checked by the reader.
        const size_t at = 8 + rng.Bits(draw++) % (bytes.size() - 8);
        bytes[at] = static_cast<kj::byte>(rng.Bits(draw++));
      }
      const bool ours = Passes(copy, c.schema, false);
      const bool reference = Passes(copy, c.schema, true);
      ASSERT_EQ(ours, reference) << "trial " << trial;
      refused += ours ? 0 : 1;
    }
    EXPECT_GT(refused, kTrials / 20);
    EXPECT_LT(refused, kTrials);
  }
}

}  // namespace
}  // namespace sy::transport
