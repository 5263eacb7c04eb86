// Tests that the parameter checksum is stable, split-invariant and sensitive to
// any single bit.
#include "services/cluster/param_checksum.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace sy::trainer {
namespace {

std::vector<float> Params() {
  std::vector<float> p(1000);
  for (size_t i = 0; i < p.size(); ++i) p[i] = 0.001f * static_cast<float>(i) - 0.3f;
  return p;
}

uint64_t Hash(const std::vector<float>& p) {
  cluster::ParamChecksum c;
  c.Add(p.data(), p.size());
  return c.value();
}

TEST(ChecksumTest, KnownValues) {
  EXPECT_EQ(cluster::ParamChecksum().Hex(), "cbf29ce484222325");  // FNV-1a 64 of no bytes
  const float one = 1.0f;  // bytes 00 00 80 3f
  cluster::ParamChecksum c;
  c.Add(&one, 1);
  // Reference computed byte by byte with the FNV-1a definition.
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t byte : {0x00, 0x00, 0x80, 0x3f}) h = (h ^ byte) * 0x100000001b3ull;
  EXPECT_EQ(c.value(), h);
  EXPECT_EQ(c.Hex().size(), 16u);
  EXPECT_EQ(cluster::ChecksumHex(0xabcull), "0000000000000abc");
}

TEST(ChecksumTest, StableAndIndependentOfSplitting) {
  const std::vector<float> p = Params();
  EXPECT_EQ(Hash(p), Hash(p));
  cluster::ParamChecksum split;
  split.Add(p.data(), 1);
  split.Add(p.data() + 1, 599);
  split.Add(p.data() + 600, 400);
  EXPECT_EQ(split.value(), Hash(p));
}

TEST(ChecksumTest, SensitiveToOneBitOrderAndSignOfZero) {
  const std::vector<float> p = Params();
  const uint64_t base = Hash(p);
  std::vector<float> q = p;
  uint32_t bits;
  std::memcpy(&bits, &q[500], 4);
  bits ^= 1u;  // lowest mantissa bit
  std::memcpy(&q[500], &bits, 4);
  EXPECT_NE(Hash(q), base);
  q = p;
  std::swap(q[1], q[2]);
  EXPECT_NE(Hash(q), base);
  EXPECT_NE(Hash({0.0f}), Hash({-0.0f}));
}

}  // namespace
}  // namespace sy::trainer
