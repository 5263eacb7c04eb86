// FNV-1a 64, the one checksum of the project: streamed actor state (checkpoint and
// move chunks, checked by the coordinator when it commits and loads a checkpoint)
// and the parameter checksum that proves two runs bit-identical are both this hash
// over bytes in order. Feeding the bytes in one call or split over several gives
// the same value. Not thread-safe: one Fnv1a64 per thread; ChecksumOf is pure.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace sy {

class Fnv1a64 {
 public:
  void Add(const void* data, size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    uint64_t hash = hash_;
    for (size_t i = 0; i < size; ++i) {
      hash ^= bytes[i];
      hash *= 0x100000001b3ull;  // FNV-1a 64 prime
    }
    hash_ = hash;
  }
  void Add(absl::string_view bytes) { Add(bytes.data(), bytes.size()); }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;  // FNV-1a 64 offset basis
};

inline uint64_t ChecksumOf(absl::string_view bytes) {
  Fnv1a64 checksum;
  checksum.Add(bytes);
  return checksum.value();
}

}  // namespace sy
