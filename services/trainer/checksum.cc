// FNV-1a 64 over f32 bit patterns (see checksum.h).
#include "services/trainer/checksum.h"

#include <cstring>

#include "absl/strings/str_format.h"

namespace sy::trainer {

void ParamChecksum::Add(const float* values, size_t count) {
  constexpr uint64_t kPrime = 0x100000001b3ull;
  uint64_t h = hash_;
  for (size_t i = 0; i < count; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &values[i], sizeof bits);
    for (int byte = 0; byte < 4; ++byte) {  // little-endian byte order, whatever the host
      h ^= (bits >> (8 * byte)) & 0xffu;
      h *= kPrime;
    }
  }
  hash_ = h;
}

std::string ParamChecksum::Hex() const { return ChecksumHex(hash_); }

std::string ChecksumHex(uint64_t checksum) { return absl::StrFormat("%016x", checksum); }

}  // namespace sy::trainer
