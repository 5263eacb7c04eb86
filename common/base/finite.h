// One check that float data holds no NaN or Inf, for every place where such a value
// would reach the weights: request tensors at a host's door and restored actor state.
// The bytes form reads possibly unaligned little-endian f32 (a received frame, a state
// blob) without copying it whole.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sy {

// InvalidArgument naming `what` and the first element that is not finite.
inline absl::Status RequireFinite(const float* values, size_t count, absl::string_view what) {
  for (size_t i = 0; i < count; ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(absl::StrCat(what, " element ", i, " is ", values[i], " (not finite)"));
    }
  }
  return absl::OkStatus();
}

// The same over `bytes` read as f32 values (its size a multiple of 4).
inline absl::Status RequireFiniteF32Bytes(absl::string_view bytes, absl::string_view what) {
  constexpr size_t kBlock = 1024;
  float block[kBlock];
  for (size_t done = 0; done < bytes.size() / sizeof(float);) {
    const size_t n = std::min(kBlock, bytes.size() / sizeof(float) - done);
    std::memcpy(block, bytes.data() + done * sizeof(float), n * sizeof(float));
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(block[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " element ", done + i, " is ", block[i], " (not finite)"));
      }
    }
    done += n;
  }
  return absl::OkStatus();
}

}  // namespace sy
