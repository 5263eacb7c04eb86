// Mutation fuzzing of the SYTF parser (tests/reference/tensor_file.h): valid files
// with random tensors are mutated (bit flips, truncation, insertion, huge counts,
// names and dims); Parse must refuse with InvalidArgument or return a file whose
// every tensor holds exactly its shape's bytes and which serializes back to the
// same bytes. Fixed seed; a failure prints the iteration and a hex dump.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/fuzz/fuzz_rng.h"
#include "tests/fuzz/mutator.h"
#include "tests/reference/tensor_file.h"

namespace sy::fuzz {
namespace {

constexpr uint64_t kSeed = 0x5EED0004;
constexpr int kIterations = 20000;

reference::TensorFile RandomFile(FuzzRng& rng) {
  reference::TensorFile file;
  const int count = static_cast<int>(rng.Below(4));
  for (int t = 0; t < count; ++t) {
    std::vector<int64_t> dims(rng.Below(3));
    int64_t n = 1;
    for (int64_t& d : dims) {
      d = static_cast<int64_t>(rng.Below(4));
      n *= d;
    }
    const std::string name = "t" + std::to_string(t);
    switch (rng.Below(3)) {
      case 0: EXPECT_TRUE(file.AddF32(name, dims, std::vector<float>(n, 1.5f)).ok()); break;
      case 1: EXPECT_TRUE(file.AddI32(name, dims, std::vector<int32_t>(n, -7)).ok()); break;
      default: EXPECT_TRUE(file.AddI64(name, dims, std::vector<int64_t>(n, 1) ).ok()); break;
    }
  }
  return file;
}

// SYTF-aware edits on top of the generic ones: a 32- or 64-bit field set to an extreme.
std::string MutateSytf(std::string bytes, FuzzRng& rng) {
  if (bytes.size() >= 8 && rng.OneIn(3)) {
    const size_t at = rng.Below(bytes.size() - 7);
    static constexpr uint64_t kExtremes[] = {0xFFFFFFFFu, 0x7FFFFFFFu, 0x80000000u, ~uint64_t{0},
                                             uint64_t{1} << 62, uint64_t{1} << 32, 0};
    const uint64_t v = kExtremes[rng.Below(sizeof(kExtremes) / sizeof(kExtremes[0]))];
    std::memcpy(&bytes[at], &v, rng.OneIn(2) ? 4 : 8);
    return bytes;
  }
  return Mutate(std::move(bytes), rng);
}

size_t ElementSize(reference::TensorDType dtype) { return dtype == reference::TensorDType::kI64 ? 8 : 4; }

TEST(TensorFileFuzz, MutatedFilesAreRefusedOrSelfConsistent) {
  int accepted = 0, rejected = 0;
  for (uint64_t i = 0; i < kIterations; ++i) {
    FuzzRng rng(kSeed, i);
    const std::string original = RandomFile(rng).Serialize();
    ASSERT_TRUE(reference::TensorFile::Parse(original).ok()) << "iteration " << i;
    const std::string bytes = MutateSytf(original, rng);
    auto parsed = reference::TensorFile::Parse(bytes);
    const std::string where = "seed=" + std::to_string(kSeed) + " iteration=" + std::to_string(i) + "\n" + HexDump(bytes);
    if (!parsed.ok()) {
      ++rejected;
      ASSERT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status() << "\n" << where;
      continue;
    }
    ++accepted;
    for (const std::string& name : parsed->names()) {
      for (auto dtype : {reference::TensorDType::kF32, reference::TensorDType::kI32, reference::TensorDType::kI64}) {
        auto t = parsed->Find(name, dtype);
        if (!t.ok()) continue;
        ASSERT_EQ((*t)->bytes.size(), static_cast<size_t>((*t)->NumElements()) * ElementSize(dtype)) << where;
      }
    }
    ASSERT_EQ(parsed->Serialize(), bytes) << where;
  }
  std::cout << "accepted " << accepted << ", rejected " << rejected << "\n";
  EXPECT_GT(rejected, kIterations / 2);
  EXPECT_GT(accepted, 0);
}

}  // namespace
}  // namespace sy::fuzz
