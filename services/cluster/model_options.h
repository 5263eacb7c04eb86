// Maps the trainer's command-line options onto the model and optimizer
// configuration of gpu/model, so the standalone and the distributed trainer
// build exactly the same model from the same flags. Pure functions.
#pragma once

#include "absl/status/statusor.h"
#include "gpu/model/config.h"
#include "gpu/model/optimizer.h"
#include "services/cluster/options.h"

namespace sy::cluster {

// The model configuration of `options`; InvalidArgument (from
// ModelConfig::Validate) when the combination is not a valid model.
absl::StatusOr<gpu::ModelConfig> ModelConfigFromOptions(const TrainerOptions& options);

// AdamW settings of the shared spec with --weight_decay and --clip applied.
gpu::AdamWConfig AdamWConfigFromOptions(const TrainerOptions& options);

}  // namespace sy::cluster
