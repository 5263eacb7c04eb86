// Bucket rows shared with the transport (see bucket_rows.h). Host-memory rows are
// allocated here, not through Backend::Alloc, because the last frame referring to
// them may free them on the transport's thread, where the backend must not be called.
#include "gpu/model/bucket_rows.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gpu/model/bucket_codec.h"

namespace sy::gpu {

absl::StatusOr<BucketRows> BucketRows::Allocate(Backend* backend, int64_t n) {
  BucketRows rows;
  rows.backend_ = backend;
  rows.size_ = n;
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float);
  if (DeviceMemoryIsHostMemory(*backend)) {
    // 64-byte aligned like the backend's own allocations.
    void* memory = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (memory == nullptr) return absl::ResourceExhaustedError(absl::StrCat("bucket rows: ", bytes, " bytes"));
    rows.owner_ = std::shared_ptr<void>(memory, [](void* p) { std::free(p); });
  } else {
    absl::StatusOr<void*> memory = backend->Alloc(bytes);
    if (!memory.ok()) return memory.status();
    rows.owner_ = std::shared_ptr<void>(*memory, [backend](void* p) { backend->Free(p); });
  }
  rows.data_ = static_cast<float*>(rows.owner_.get());
  return rows;
}

absl::StatusOr<BucketRows> BucketRows::FromHost(Backend* backend, std::vector<float> host) {
  const int64_t n = static_cast<int64_t>(host.size());
  if (!DeviceMemoryIsHostMemory(*backend)) {
    absl::StatusOr<BucketRows> rows = Allocate(backend, n);
    if (!rows.ok()) return rows.status();
    if (absl::Status s = backend->CopyHostToDevice(rows->data_, host.data(), host.size() * sizeof(float)); !s.ok()) {
      return s;
    }
    return rows;
  }
  BucketRows rows;
  rows.backend_ = backend;
  rows.size_ = n;
  auto adopted = std::make_shared<std::vector<float>>(std::move(host));
  rows.data_ = adopted->data();
  rows.owner_ = std::move(adopted);
  return rows;
}

absl::StatusOr<transport::Frame> BucketRows::ToFrame(proto::DType dtype) const {
  if (dtype == proto::DType::F32 && DeviceMemoryIsHostMemory(*backend_)) {
    return transport::Frame::FromShared(owner_, data_, static_cast<size_t>(size_) * sizeof(float));
  }
  return EncodeDeviceFloats(backend_, data_, size_, dtype);
}

}  // namespace sy::gpu
