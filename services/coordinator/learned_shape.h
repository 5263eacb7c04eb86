// LearnedShape: the shape of the model the coordinator places (Switch layers, experts
// per Switch layer, dense shards), learned rather than configured: every host and
// trainer sends its model's shape when it registers, the first one is adopted (or,
// after a restart, the saved placement's), and a node whose model differs is refused.
// So no deployment file carries a number derived from the model flags.
//
// Not thread-safe: owned by the ClusterActor.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "services/cluster/placement_table.h"

namespace sy::coordinator {

class LearnedShape {
 public:
  // Adopts `shape`, which came from `source` (a node id, or "the saved placement").
  void Adopt(const cluster::ModelShape& shape, std::string source);
  // Whether node `node`, whose model has shape `offered`, may register: InvalidArgument
  // when that shape has no Switch layer or no expert, FailedPrecondition naming both
  // shapes when it differs from the known one; OK when it is the same or none is known
  // yet (the caller then adopts it).
  absl::Status Check(const std::string& node, const cluster::ModelShape& offered) const;

  bool known() const { return !source_.empty(); }
  // The adopted shape; all zero while none is known.
  const cluster::ModelShape& shape() const { return shape_; }

 private:
  cluster::ModelShape shape_;
  std::string source_;  // where the shape came from; empty while none is known
};

// "2 Switch layers x 8 experts and 46 dense shards".
std::string ShapeToString(const cluster::ModelShape& shape);

}  // namespace sy::coordinator
