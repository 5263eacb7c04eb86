// The door check's walk, by per-schema plans (see door_walk.h).
#include "common/transport/door_walk.h"

#include <capnp/dynamic.h>

#include <cstring>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace sy::transport {
namespace {

enum class Kind : uint8_t { kText, kData, kStruct, kList, kTextList, kDataList, kStructList, kListOfLists };

struct Plan;

struct PointerField {
  uint32_t index = 0;  // in the pointer section
  Kind kind = Kind::kText;
  capnp::Type type;             // lists: the list type
  const Plan* plan = nullptr;   // structs and lists of structs
};

struct Plan {
  std::vector<PointerField> fields;  // outside the union
  std::vector<const Plan*> groups;   // groups outside the union (they share our sections)
  bool has_union = false;
  uint32_t discriminant_offset = 0;  // in 16-bit units of the data section
  std::vector<std::pair<uint16_t, PointerField>> union_fields;  // by discriminant value
  std::vector<std::pair<uint16_t, const Plan*>> union_groups;
};

struct SchemaHash {
  size_t operator()(const capnp::StructSchema& schema) const { return schema.hashCode(); }
};

class PlanCache {
 public:
  const Plan& For(capnp::StructSchema schema) {
    {
      absl::ReaderMutexLock lock(&mu_);
      auto it = plans_.find(schema);
      if (it != plans_.end()) return *it->second;
    }
    absl::MutexLock lock(&mu_);
    return *BuildLocked(schema);
  }

 private:
  // The plan is listed before it is filled in, so a schema that nests itself finds it.
  const Plan* BuildLocked(capnp::StructSchema schema) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto [it, inserted] = plans_.try_emplace(schema, nullptr);
    if (!inserted) return it->second.get();
    it->second = std::make_unique<Plan>();
    Plan* plan = it->second.get();
    for (capnp::StructSchema::Field field : schema.getNonUnionFields()) AddField(*plan, field, false);
    const capnp::StructSchema::FieldSubset members = schema.getUnionFields();
    if (members.size() > 0) {
      plan->has_union = true;
      plan->discriminant_offset = schema.getProto().getStruct().getDiscriminantOffset();
      for (capnp::StructSchema::Field field : members) AddField(*plan, field, true);
    }
    return plan;
  }

  void AddField(Plan& plan, capnp::StructSchema::Field field, bool in_union) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const auto proto = field.getProto();
    const uint16_t discriminant = proto.getDiscriminantValue();
    if (proto.isGroup()) {
      const Plan* group = BuildLocked(field.getType().asStruct());
      if (in_union) {
        plan.union_groups.emplace_back(discriminant, group);
      } else {
        plan.groups.push_back(group);
      }
      return;
    }
    PointerField pointer;
    pointer.index = proto.getSlot().getOffset();
    pointer.type = field.getType();
    switch (pointer.type.which()) {
      case capnp::schema::Type::TEXT:
        pointer.kind = Kind::kText;
        break;
      case capnp::schema::Type::DATA:
        pointer.kind = Kind::kData;
        break;
      case capnp::schema::Type::STRUCT:
        pointer.kind = Kind::kStruct;
        pointer.plan = BuildLocked(pointer.type.asStruct());
        break;
      case capnp::schema::Type::LIST: {
        const capnp::Type element = pointer.type.asList().getElementType();
        switch (element.which()) {
          case capnp::schema::Type::TEXT:
            pointer.kind = Kind::kTextList;
            break;
          case capnp::schema::Type::DATA:
            pointer.kind = Kind::kDataList;
            break;
          case capnp::schema::Type::STRUCT:
            pointer.kind = Kind::kStructList;
            pointer.plan = BuildLocked(element.asStruct());
            break;
          case capnp::schema::Type::LIST:
          case capnp::schema::Type::ANY_POINTER:
          case capnp::schema::Type::INTERFACE:
            pointer.kind = Kind::kListOfLists;  // read through the dynamic API (none in our schemas)
            break;
          default:
            pointer.kind = Kind::kList;  // scalars and enums: the element size is the check
        }
        break;
      }
      default:
        return;  // scalars need no check; AnyPointer and capabilities are not read
    }
    if (in_union) {
      plan.union_fields.emplace_back(discriminant, pointer);
    } else {
      plan.fields.push_back(pointer);
    }
  }

  absl::Mutex mu_;
  std::unordered_map<capnp::StructSchema, std::unique_ptr<Plan>, SchemaHash> plans_ ABSL_GUARDED_BY(mu_);
};

void Walk(capnp::AnyStruct::Reader reader, const Plan& plan);
PlanCache& Plans();

void CheckText(capnp::Text::Reader text) {
  KJ_REQUIRE(std::memchr(text.begin(), '\0', text.size()) == nullptr, "text with a NUL byte inside");
}

// Lists of lists (and of pointers or capabilities), element by element.
void ReadDynamic(const capnp::DynamicValue::Reader& value) {
  switch (value.getType()) {
    case capnp::DynamicValue::LIST:
      for (auto element : value.as<capnp::DynamicList>()) ReadDynamic(element);
      return;
    case capnp::DynamicValue::TEXT:
      CheckText(value.as<capnp::Text>());
      return;
    case capnp::DynamicValue::STRUCT: {
      const capnp::DynamicStruct::Reader element = value.as<capnp::DynamicStruct>();
      Walk(element.as<capnp::AnyStruct>(), Plans().For(element.getSchema()));
      return;
    }
    default:
      return;
  }
}

void ReadPointer(capnp::List<capnp::AnyPointer>::Reader pointers, const PointerField& field) {
  if (field.index >= pointers.size()) return;  // an older, shorter struct: the field is null
  const capnp::AnyPointer::Reader pointer = pointers[field.index];
  switch (field.kind) {
    case Kind::kText:
      CheckText(pointer.getAs<capnp::Text>());
      return;
    case Kind::kData:
      pointer.getAs<capnp::Data>();
      return;
    case Kind::kStruct:
      Walk(pointer.getAs<capnp::AnyStruct>(), *field.plan);
      return;
    case Kind::kList:
      pointer.getAs<capnp::DynamicList>(field.type.asList());
      return;
    case Kind::kTextList:
      for (capnp::Text::Reader text : pointer.getAs<capnp::List<capnp::Text>>()) CheckText(text);
      return;
    case Kind::kDataList:
      for (capnp::Data::Reader data : pointer.getAs<capnp::List<capnp::Data>>()) (void)data;
      return;
    case Kind::kStructList: {
      const auto list = pointer.getAs<capnp::DynamicList>(field.type.asList()).as<capnp::AnyList>();
      for (capnp::AnyStruct::Reader element : list.as<capnp::List<capnp::AnyStruct>>()) Walk(element, *field.plan);
      return;
    }
    case Kind::kListOfLists:
      ReadDynamic(pointer.getAs<capnp::DynamicList>(field.type.asList()));
      return;
  }
}

void Walk(capnp::AnyStruct::Reader reader, const Plan& plan) {
  const capnp::List<capnp::AnyPointer>::Reader pointers = reader.getPointerSection();
  for (const PointerField& field : plan.fields) ReadPointer(pointers, field);
  for (const Plan* group : plan.groups) Walk(reader, *group);
  if (!plan.has_union) return;
  // The discriminant, as capnp reads it: little-endian, 0 past the end of the data section.
  const kj::ArrayPtr<const kj::byte> data = reader.getDataSection();
  uint16_t which = 0;
  const size_t at = size_t{plan.discriminant_offset} * 2;
  if (at + 2 <= data.size()) which = static_cast<uint16_t>(data[at] | (data[at + 1] << 8));
  for (const auto& [value, field] : plan.union_fields) {
    if (value == which) ReadPointer(pointers, field);
  }
  for (const auto& [value, group] : plan.union_groups) {
    if (value == which) Walk(reader, *group);
  }
}

PlanCache& Plans() {
  static PlanCache* cache = new PlanCache;  // never destroyed: walks may run during exit
  return *cache;
}

}  // namespace

void ReadEveryField(capnp::AnyPointer::Reader body, capnp::StructSchema schema) {
  Walk(body.getAs<capnp::AnyStruct>(), Plans().For(schema));
}

}  // namespace sy::transport
