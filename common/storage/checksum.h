// The checksum of streamed actor state (checkpoint and migration chunks): FNV-1a 64
// over the bytes in order. Hosts compute it over an actor's serialized state and
// send it in ChunkIn.checksum; the coordinator checks it when it commits and loads a
// checkpoint. Feeding the bytes in one call or split over several gives the same value.
// Not thread-safe: one StateChecksum per thread; the free function is pure.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace sy::storage {

class StateChecksum {
 public:
  void Add(const void* data, size_t size);
  void Add(absl::string_view bytes) { Add(bytes.data(), bytes.size()); }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;  // FNV-1a 64 offset basis
};

uint64_t ChecksumOf(absl::string_view bytes);

}  // namespace sy::storage
