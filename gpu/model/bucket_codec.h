// The wire codec of float tensors, above all of a bucket's activations and their
// gradients: f32 as is, or bf16 (round-to-nearest-even, the gpu bf16 helpers).
// Encoding to bf16 is exactly the rounding the standalone path applies with
// --wire_dtype=bf16, so decoding a bf16 frame gives the same floats on every side.
// The device forms move between a backend's device memory and a frame in one pass
// where the backend allows it: a frame's own buffer is filled straight from device
// memory and a frame is decoded straight into device memory; bf16 is converted in
// place on the CPU backend, through a host staging buffer elsewhere. Stateless:
// thread-safe as far as the backend in use is.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/transport/message.h"
#include "gpu/backend.h"
#include "proto/envelope.capnp.h"

namespace sy::gpu {

// "f32" or "bf16"; InvalidArgument otherwise.
absl::StatusOr<proto::DType> ParseWireDType(const std::string& name);

// Whether the backend's device memory is ordinary host memory (the CPU backend).
bool DeviceMemoryIsHostMemory(const Backend& backend);

// src (n) host floats as one data frame of `dtype`.
transport::Frame EncodeFloats(const float* src, int64_t n, proto::DType dtype);
// src (n) floats of `backend`'s device memory as one data frame of `dtype`.
absl::StatusOr<transport::Frame> EncodeDeviceFloats(Backend* backend, const float* src, int64_t n,
                                                    proto::DType dtype);

// out (n) host floats from a frame of `dtype`; InvalidArgument when the dtype is
// neither f32 nor bf16 or the frame is not n elements.
absl::Status DecodeFloats(const transport::Frame& frame, proto::DType dtype, int64_t n, float* out);
// out (n) floats of `backend`'s device memory from a frame of `dtype` (errors as DecodeFloats).
absl::Status DecodeDeviceFloats(Backend* backend, const transport::Frame& frame, proto::DType dtype, int64_t n,
                                float* out);

}  // namespace sy::gpu
