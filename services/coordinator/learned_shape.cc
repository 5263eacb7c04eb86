// The model shape learned from the registering nodes (see learned_shape.h).
#include "services/coordinator/learned_shape.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace sy::coordinator {
namespace {

bool SameShape(const cluster::ModelShape& a, const cluster::ModelShape& b) {
  return a.num_switch_layers == b.num_switch_layers && a.num_experts == b.num_experts &&
         a.num_dense_shards == b.num_dense_shards;
}

}  // namespace

std::string ShapeToString(const cluster::ModelShape& shape) {
  return absl::StrCat(shape.num_switch_layers,
                      shape.num_switch_layers == 1 ? " Switch layer x " : " Switch layers x ",
                      shape.num_experts, shape.num_experts == 1 ? " expert and " : " experts and ",
                      shape.num_dense_shards, shape.num_dense_shards == 1 ? " dense shard" : " dense shards");
}

void LearnedShape::Adopt(const cluster::ModelShape& shape, std::string source) {
  shape_ = shape;
  source_ = std::move(source);
}

absl::Status LearnedShape::Check(const std::string& node, const cluster::ModelShape& offered) const {
  if (offered.num_switch_layers == 0 || offered.num_experts == 0) {
    return absl::InvalidArgumentError(absl::StrCat("register: ", node, " sent a model shape of ",
                                                   ShapeToString(offered),
                                                   " (a model needs at least one Switch layer and one expert)"));
  }
  if (!known() || SameShape(offered, shape_)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("register: ", node, "'s model has ", ShapeToString(offered),
                                                    ", but this cluster's model (learned from ", source_, ") has ",
                                                    ShapeToString(shape_)));
}

}  // namespace sy::coordinator
