// The parameter checksum: FNV-1a 64 (common/base/fnv1a.h) over the bit patterns of every f32
// parameter value in canonical order (the order of the shared model spec),
// printed as 16 hex digits. Equal checksums mean bit-identical weights, which is
// how runs with different numbers of trainers and hosts are compared.
// Not thread-safe: one ParamChecksum per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/base/fnv1a.h"

namespace sy::cluster {

class ParamChecksum {
 public:
  // Folds `count` values into the hash, in order. Feeding the same values in one
  // call or split over several calls gives the same result.
  void Add(const float* values, size_t count);
  uint64_t value() const { return hash_.value(); }
  std::string Hex() const;

 private:
  Fnv1a64 hash_;
};

// 16 lowercase hex digits, zero padded.
std::string ChecksumHex(uint64_t checksum);

}  // namespace sy::cluster
