// Tests of the corpus split: the last 10% is validation, short files are refused.
#include "services/trainer/corpus.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace sy::trainer {
namespace {

std::vector<uint8_t> Iota(int n) {
  std::vector<uint8_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i % 251);
  return v;
}

TEST(CorpusTest, ValIsTheLastTenPercent) {
  absl::StatusOr<Corpus> c = SplitCorpus(Iota(1005), 10);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->val.size(), 100u);
  ASSERT_EQ(c->train.size(), 905u);
  EXPECT_EQ(c->train.front(), 0);
  EXPECT_EQ(c->val.front(), 905 % 251);
  EXPECT_EQ(c->val.back(), 1004 % 251);
}

TEST(CorpusTest, TooShortForAWindowIsInvalidArgument) {
  absl::StatusOr<Corpus> c = SplitCorpus(Iota(100), 11);  // val would hold 10 < 11 bytes
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("too short"), std::string::npos);
  EXPECT_TRUE(SplitCorpus(Iota(110), 11).ok());
  EXPECT_FALSE(SplitCorpus({}, 1).ok());
}

TEST(CorpusTest, MissingFileIsNotFound) {
  absl::StatusOr<Corpus> c = LoadCorpus("/nonexistent/switchyard/corpus.txt", 2);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("/nonexistent/switchyard/corpus.txt"), std::string::npos);
}

TEST(CorpusTest, LoadsFileBytesExactly) {
  const std::string path = ::testing::TempDir() + "/corpus_test.bin";
  std::vector<uint8_t> bytes = Iota(300);
  bytes[7] = 0;  // NUL and high bytes must survive
  bytes[8] = 255;
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  absl::StatusOr<Corpus> c = LoadCorpus(path, 5);
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<uint8_t> joined = c->train;
  joined.insert(joined.end(), c->val.begin(), c->val.end());
  EXPECT_EQ(joined, bytes);
  absl::StatusOr<Corpus> short_file = LoadCorpus(path, 31);
  ASSERT_FALSE(short_file.ok());
  EXPECT_EQ(short_file.status().code(), absl::StatusCode::kInvalidArgument);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace sy::trainer
