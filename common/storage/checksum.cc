// FNV-1a 64 over bytes (see checksum.h).
#include "common/storage/checksum.h"

namespace sy::storage {

void StateChecksum::Add(const void* data, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint64_t hash = hash_;
  for (size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= 0x100000001b3ull;  // FNV-1a 64 prime
  }
  hash_ = hash;
}

uint64_t ChecksumOf(absl::string_view bytes) {
  StateChecksum checksum;
  checksum.Add(bytes);
  return checksum.value();
}

}  // namespace sy::storage
