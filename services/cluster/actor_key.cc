// ActorKey text and proto forms (see actor_key.h).
#include "services/cluster/actor_key.h"

#include <kj/exception.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace sy::cluster {

std::string ActorKey::ToString() const {
  return dense ? absl::StrCat("D", shard) : absl::StrCat("L", switch_layer, "E", expert);
}

absl::StatusOr<ActorKey> ActorKey::Parse(absl::string_view text) {
  auto bad = [&] { return absl::InvalidArgumentError(absl::StrCat("bad actor name '", text, "' (want L<switch layer>E<expert> or D<shard>)")); };
  uint32_t a = 0, b = 0;
  if (absl::ConsumePrefix(&text, "D")) {
    if (!absl::SimpleAtoi(text, &a)) return bad();
    return Dense(a);
  }
  if (!absl::ConsumePrefix(&text, "L")) return bad();
  const size_t e = text.find('E');
  if (e == absl::string_view::npos || !absl::SimpleAtoi(text.substr(0, e), &a) ||
      !absl::SimpleAtoi(text.substr(e + 1), &b)) {
    return bad();
  }
  return Expert(a, b);
}

void ActorKey::ToProto(proto::expert::ActorRef::Builder out) const {
  if (dense) {
    out.setDenseShard(shard);
  } else {
    auto key = out.initExpert();
    key.setSwitchLayer(switch_layer);
    key.setExpert(expert);
  }
}

absl::StatusOr<ActorKey> ActorKey::FromProto(proto::expert::ActorRef::Reader ref) {
  absl::StatusOr<ActorKey> result = absl::InvalidArgumentError("actor ref: unknown kind");
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    switch (ref.which()) {
      case proto::expert::ActorRef::EXPERT:
        result = Expert(ref.getExpert().getSwitchLayer(), ref.getExpert().getExpert());
        break;
      case proto::expert::ActorRef::DENSE_SHARD:
        result = Dense(ref.getDenseShard());
        break;
    }
  });
  if (error != nullptr) return absl::InvalidArgumentError("actor ref unreadable");
  return result;
}

}  // namespace sy::cluster
