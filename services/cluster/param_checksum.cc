// The parameter checksum over f32 bit patterns (see param_checksum.h).
#include "services/cluster/param_checksum.h"

#include "absl/strings/str_format.h"

namespace sy::cluster {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the parameter checksum is defined over little-endian f32 bit patterns");

void ParamChecksum::Add(const float* values, size_t count) { hash_.Add(values, count * sizeof(float)); }

std::string ParamChecksum::Hex() const { return ChecksumHex(hash_.value()); }

std::string ChecksumHex(uint64_t checksum) { return absl::StrFormat("%016x", checksum); }

}  // namespace sy::cluster
