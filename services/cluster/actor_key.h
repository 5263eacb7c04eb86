// ActorKey: names one actor whose placement and state the coordinator manages, an
// expert (switch_layer, expert) or a dense parameter shard. Experts are named by
// Switch-layer index (0: the model's first Switch layer), never by model layer (see
// switch_layers.h to convert). A value type with a total order (experts by
// (switch_layer, expert) first, then dense shards by index), a short text form
// ("L0E3": Switch layer 0, expert 3; "D2") used by logs and syctl, and conversion
// to/from proto ActorRef. Thread-compatible value.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/expert.capnp.h"

namespace sy::cluster {

struct ActorKey {
  bool dense = false;  // false: expert (switch_layer, expert); true: dense shard `shard`
  uint32_t switch_layer = 0;
  uint32_t expert = 0;
  uint32_t shard = 0;

  static ActorKey Expert(uint32_t switch_layer, uint32_t expert) { return {false, switch_layer, expert, 0}; }
  static ActorKey Dense(uint32_t shard) { return {true, 0, 0, shard}; }

  std::string ToString() const;
  // Inverse of ToString; InvalidArgument otherwise.
  static absl::StatusOr<ActorKey> Parse(absl::string_view text);

  void ToProto(proto::expert::ActorRef::Builder out) const;
  static absl::StatusOr<ActorKey> FromProto(proto::expert::ActorRef::Reader ref);

  auto Tie() const { return std::make_tuple(dense, dense ? shard : switch_layer, dense ? 0u : expert); }
  bool operator<(const ActorKey& o) const { return Tie() < o.Tie(); }
  bool operator==(const ActorKey& o) const { return Tie() == o.Tie(); }
  bool operator!=(const ActorKey& o) const { return !(*this == o); }
  template <typename H>
  friend H AbslHashValue(H h, const ActorKey& k) {
    return H::combine(std::move(h), k.dense, k.switch_layer, k.expert, k.shard);
  }
};

}  // namespace sy::cluster
