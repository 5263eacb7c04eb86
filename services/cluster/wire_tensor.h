// Float tensors on the wire: f32 as is, or bf16 (round-to-nearest-even, the gpu
// bf16 helpers) for activations and their gradients. Encoding to bf16 is exactly
// the rounding the standalone path applies with --wire_dtype=bf16, so decoding a
// bf16 frame gives the same floats on every side. Pure functions: thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/transport/message.h"
#include "proto/envelope.capnp.h"

namespace sy::cluster {

// "f32" or "bf16"; InvalidArgument otherwise.
absl::StatusOr<proto::DType> ParseWireDType(const std::string& name);

// src (n) host floats as one data frame of `dtype`.
transport::Frame EncodeFloats(const float* src, int64_t n, proto::DType dtype);

// out (n) from a frame of `dtype`; InvalidArgument when the frame is not n elements.
absl::Status DecodeFloats(const transport::Frame& frame, proto::DType dtype, int64_t n, float* out);

// x (n) rounded to bf16 in place (what an encode/decode round trip does).
void RoundToBf16InPlace(float* x, int64_t n);

}  // namespace sy::cluster
