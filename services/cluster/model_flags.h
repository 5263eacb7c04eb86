// The model and training flags (--layers, --d_model, ..., --lr, --lb_alpha, --seed, --wire_dtype,
// --eval_every), defined once here (library sy_model_flags) for every binary that
// trains or forwards them: sy-trainer, sy-expert-host and sy-local (which passes the
// ones given to it on to each child). Link it only into binaries that own these flags.
//
// Flags are process-global: not thread-safe; call from main() or a test.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/cluster/options.h"

namespace sy::cluster {

// Copies the model and training flags into their fields of `options` (no checks).
void ReadModelFlags(TrainerOptions* options);

// "--name=value" for each model or training flag whose value is not its default, in
// definition order: what a launcher passes on so that its children train the same model.
std::vector<std::string> ChangedModelFlags();

// `args`, model and training flags only, over the defaults (flags::ParseArgs), checked
// (CheckTrainerOptions without the run flags); InvalidArgument naming the flag.
absl::StatusOr<TrainerOptions> ParseModelFlags(const std::vector<std::string>& args);

}  // namespace sy::cluster
