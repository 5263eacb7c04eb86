// Loading and splitting the byte corpus (see corpus.h).
#include "services/trainer/corpus.h"

#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sy::trainer {

absl::StatusOr<Corpus> SplitCorpus(std::vector<uint8_t> bytes, int64_t min_split_bytes) {
  const int64_t size = static_cast<int64_t>(bytes.size());
  const int64_t val_size = size / 10;
  const int64_t train_size = size - val_size;
  if (min_split_bytes < 1) min_split_bytes = 1;
  if (val_size < min_split_bytes || train_size < min_split_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "corpus too short: ", size, " bytes gives a validation split of ", val_size,
        " bytes; each split needs at least ", min_split_bytes, " (context + 1), so the file needs at least ",
        10 * min_split_bytes, " bytes"));
  }
  Corpus corpus;
  corpus.val.assign(bytes.begin() + train_size, bytes.end());
  bytes.resize(static_cast<size_t>(train_size));
  corpus.train = std::move(bytes);
  return corpus;
}

absl::StatusOr<Corpus> LoadCorpus(const std::string& path, int64_t min_split_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open corpus file '", path, "'"));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading corpus file '", path, "'"));
  absl::StatusOr<Corpus> corpus = SplitCorpus(std::move(bytes), min_split_bytes);
  if (!corpus.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", corpus.status().message()));
  }
  return corpus;
}

}  // namespace sy::trainer
