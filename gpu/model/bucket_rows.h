// One bucket's rows in a backend's device memory, owned, on their way between the
// wire and the expert unit with as few copies as the backend allows. On a backend
// whose device memory is host memory (the CPU backend) the host floats a request was
// decoded into are adopted as they are, and an f32 frame of the rows refers to them
// instead of copying (the frame keeps them alive until the transport is done). Other
// backends upload the host floats and encode the frame from device memory
// (gpu/model/bucket_codec.h). A move-only value owned by one thread; frames made from
// it may outlive it on any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/transport/message.h"
#include "gpu/backend.h"
#include "proto/envelope.capnp.h"

namespace sy::gpu {

class BucketRows {
 public:
  BucketRows() = default;
  BucketRows(BucketRows&&) = default;
  BucketRows& operator=(BucketRows&&) = default;
  BucketRows(const BucketRows&) = delete;
  BucketRows& operator=(const BucketRows&) = delete;

  // n uninitialised floats on `backend` (which must outlive the value).
  static absl::StatusOr<BucketRows> Allocate(Backend* backend, int64_t n);
  // The floats of `host` on `backend`: adopted on a host-memory backend, else uploaded.
  static absl::StatusOr<BucketRows> FromHost(Backend* backend, std::vector<float> host);

  float* data() const { return data_; }  // device memory
  int64_t size() const { return size_; }
  // The rows as one data frame of `dtype`: the rows themselves for f32 on a
  // host-memory backend, else encoded (EncodeDeviceFloats).
  absl::StatusOr<transport::Frame> ToFrame(proto::DType dtype) const;

 private:
  Backend* backend_ = nullptr;
  std::shared_ptr<void> owner_;  // frees the memory (host memory may be released by a frame on any thread)
  float* data_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace sy::gpu
