// The training corpus: a byte file split into a training part and a validation
// part (the last 10% of the file), so every trainer and every run sees the same
// split. Immutable after loading; safe to share between threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sy::trainer {

struct Corpus {
  std::vector<uint8_t> train;  // bytes [0, size - size/10)
  std::vector<uint8_t> val;    // the last size/10 bytes
};

// Splits `bytes` into train (first 90%) and val (last 10%, rounded down).
// InvalidArgument when either part holds fewer than `min_split_bytes` bytes
// (a window of context + 1 tokens must fit in both).
absl::StatusOr<Corpus> SplitCorpus(std::vector<uint8_t> bytes, int64_t min_split_bytes);

// Reads the whole file at `path` and splits it as SplitCorpus does.
// NotFound when the file cannot be opened, InvalidArgument when too short.
absl::StatusOr<Corpus> LoadCorpus(const std::string& path, int64_t min_split_bytes);

}  // namespace sy::trainer
