// The weights file (model.bin): a trained model's parameters as named f32 tensors, so
// that a run's final weights outlive it and a reader can check every tensor's shape
// against the model it builds before using a single value.
//
// Layout, little endian:
//   "SYWT", uint32 version = 1, uint64 step (the parameters' version), uint32 count;
//   per tensor: uint32 name_len, name, uint32 ndim, int64 dims[ndim];
//   then every tensor's values back to back (f32, row-major, in the listed order);
//   then uint64 FNV-1a 64 of those value bytes. Written in the canonical parameter
//   order, that trailer IS the run's param_checksum (services/cluster/param_checksum.h).
//
// Pure functions over values; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gpu/model/params.h"

namespace sy::gpu {

struct WeightsTensor {
  std::string name;
  std::vector<int64_t> dims;
};

struct Weights {
  uint64_t step = 0;
  std::vector<WeightsTensor> tensors;
  std::vector<float> values;  // every tensor's values, in `tensors` order
  uint64_t checksum = 0;      // FNV-1a 64 of `values` (set by Serialize's input, checked by Parse)
};

// The weights of a parameter block: `infos`' names and shapes over `values` (host
// copy of the block, ParamCount(infos) floats); the checksum is computed here.
Weights WeightsOfParams(const std::vector<ParamInfo>& infos, std::vector<float> values, uint64_t step);

std::string SerializeWeights(const Weights& weights);

// Rejects a malformed file with InvalidArgument naming what is wrong (bad magic,
// unknown version, truncation, absurd sizes, trailing bytes) and a file whose values
// do not match their checksum with DataLoss. Never reads out of bounds or allocates
// more than the input's size.
absl::StatusOr<Weights> ParseWeights(absl::string_view bytes);

// OK when `weights` holds exactly the tensors of `infos`, in order, with their shapes;
// otherwise InvalidArgument naming the first difference ("shape mismatch: ...").
absl::Status CheckWeightsFit(const Weights& weights, const std::vector<ParamInfo>& infos);

}  // namespace sy::gpu
