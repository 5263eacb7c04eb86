// FillRandom and ReadEveryField: recursive walks over capnp::StructSchema fields.
#include "tests/fuzz/capnp_walk.h"

#include <string>

#include <capnp/schema.h>

namespace sy::fuzz {
namespace {

std::string RandomText(FuzzRng& rng) {
  std::string s(rng.Below(12), 'a');
  for (char& c : s) c = static_cast<char>('a' + rng.Below(26));
  return s;
}

capnp::DynamicValue::Reader RandomScalar(capnp::Type type, FuzzRng& rng) {
  switch (type.which()) {
    case capnp::schema::Type::BOOL: return rng.OneIn(2);
    case capnp::schema::Type::INT8: return static_cast<int8_t>(rng.Bits());
    case capnp::schema::Type::INT16: return static_cast<int16_t>(rng.Bits());
    case capnp::schema::Type::INT32: return static_cast<int32_t>(rng.Below(1000)) - 10;
    case capnp::schema::Type::INT64: return static_cast<int64_t>(rng.Below(100000)) - 10;
    case capnp::schema::Type::UINT8: return static_cast<uint8_t>(rng.Bits());
    case capnp::schema::Type::UINT16: return static_cast<uint16_t>(rng.Bits());
    case capnp::schema::Type::UINT32: return static_cast<uint32_t>(rng.Below(16));
    case capnp::schema::Type::UINT64: return static_cast<uint64_t>(rng.Below(1000));
    case capnp::schema::Type::FLOAT32: return static_cast<float>(rng.Below(1000)) * 0.01f;
    case capnp::schema::Type::FLOAT64: return static_cast<double>(rng.Below(1000)) * 0.01;
    case capnp::schema::Type::ENUM: {
      auto enumerants = type.asEnum().getEnumerants();
      return capnp::DynamicEnum(enumerants[static_cast<unsigned>(rng.Below(enumerants.size()))]);
    }
    default: return capnp::DynamicValue::Reader();  // VOID and pointer types are filled elsewhere
  }
}

bool IsScalar(capnp::Type type) {
  return !type.isText() && !type.isData() && !type.isList() && !type.isStruct() && !type.isAnyPointer() &&
         !type.isInterface();
}

void FillList(capnp::DynamicList::Builder list, capnp::Type element, FuzzRng& rng, int depth) {
  for (unsigned i = 0; i < list.size(); ++i) {
    if (IsScalar(element)) {
      if (!element.isVoid()) list.set(i, RandomScalar(element, rng));
    } else if (element.isText()) {
      list.set(i, capnp::Text::Reader(RandomText(rng).c_str()));
    } else if (element.isStruct()) {
      FillRandom(list[i].as<capnp::DynamicStruct>(), rng, depth - 1);
    } else if (element.isList() && depth > 0) {
      auto inner = element.asList().getElementType();
      FillList(list.init(i, static_cast<unsigned>(rng.Below(4))).as<capnp::DynamicList>(), inner, rng, depth - 1);
    }
  }
}

void FillField(capnp::DynamicStruct::Builder builder, capnp::StructSchema::Field field, FuzzRng& rng, int depth) {
  const capnp::Type type = field.getType();
  if (field.getProto().isGroup()) {
    FillRandom(builder.init(field).as<capnp::DynamicStruct>(), rng, depth);
  } else if (type.isVoid()) {
    builder.set(field, capnp::VOID);
  } else if (IsScalar(type)) {
    builder.set(field, RandomScalar(type, rng));
  } else if (type.isText()) {
    builder.set(field, capnp::Text::Reader(RandomText(rng).c_str()));
  } else if (type.isData()) {
    const std::string bytes = RandomText(rng);
    builder.set(field, capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(bytes.data()), bytes.size()));
  } else if (type.isStruct() && depth > 0) {
    FillRandom(builder.init(field).as<capnp::DynamicStruct>(), rng, depth - 1);
  } else if (type.isList() && depth > 0) {
    FillList(builder.init(field, static_cast<unsigned>(rng.Below(4))).as<capnp::DynamicList>(),
             type.asList().getElementType(), rng, depth);
  }
}

uint64_t ReadValue(capnp::DynamicValue::Reader value);

// Reads every byte (so a sanitizer sees an out-of-bounds text or data); returns the non-zero ones.
uint64_t TouchBytes(kj::ArrayPtr<const kj::byte> bytes) {
  uint64_t nonzero = 0;
  for (kj::byte b : bytes) nonzero += b != 0;
  return nonzero;
}

uint64_t ReadList(capnp::DynamicList::Reader list) {
  uint64_t visited = 1;
  for (auto element : list) visited += ReadValue(element);
  return visited;
}

uint64_t ReadValue(capnp::DynamicValue::Reader value) {
  switch (value.getType()) {
    case capnp::DynamicValue::STRUCT: return ReadEveryField(value.as<capnp::DynamicStruct>());
    case capnp::DynamicValue::LIST: return ReadList(value.as<capnp::DynamicList>());
    case capnp::DynamicValue::TEXT: return 1 + TouchBytes(value.as<capnp::Text>().asBytes());
    case capnp::DynamicValue::DATA: return 1 + TouchBytes(value.as<capnp::Data>());
    default: return 1;
  }
}

}  // namespace

void FillRandom(capnp::DynamicStruct::Builder builder, FuzzRng& rng, int depth) {
  const capnp::StructSchema schema = builder.getSchema();
  for (auto field : schema.getNonUnionFields()) FillField(builder, field, rng, depth);
  auto union_fields = schema.getUnionFields();
  if (union_fields.size() > 0) {
    FillField(builder, union_fields[static_cast<unsigned>(rng.Below(union_fields.size()))], rng, depth);
  }
}

uint64_t ReadEveryField(capnp::DynamicStruct::Reader reader) {
  uint64_t visited = 1;
  for (auto field : reader.getSchema().getNonUnionFields()) {
    if (field.getType().isAnyPointer() || field.getType().isInterface()) continue;
    visited += ReadValue(reader.get(field));
  }
  KJ_IF_MAYBE(active, reader.which()) {
    if (!active->getType().isAnyPointer()) visited += ReadValue(reader.get(*active));
  }
  return visited;
}

}  // namespace sy::fuzz
