// Tests of the SYTF tensor file: C++ round trips, rejection of malformed files,
// and the same bytes through the Python implementation the oracle uses.
#include "tests/reference/tensor_file.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sy::reference {
namespace {

TensorFile Sample() {
  TensorFile f;
  EXPECT_TRUE(f.AddF32("w", {2, 3}, std::vector<float>{1.5f, -2.f, 0.f, 3.25f, 1e-30f, -7.f}).ok());
  EXPECT_TRUE(f.AddI32("tokens", {4}, std::vector<int32_t>{0, 255, -1, 7}).ok());
  EXPECT_TRUE(f.AddI64("layers", {}, std::vector<int64_t>{int64_t{1} << 40}).ok());
  EXPECT_TRUE(f.AddF32("empty", {0, 5}, {}).ok());
  return f;
}

TEST(TensorFileTest, RoundTripKeepsNamesOrderShapesAndValues) {
  const TensorFile f = Sample();
  absl::StatusOr<TensorFile> g = TensorFile::Parse(f.Serialize());
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->names(), (std::vector<std::string>{"w", "tokens", "layers", "empty"}));
  EXPECT_EQ(*g->F32("w"), (std::vector<float>{1.5f, -2.f, 0.f, 3.25f, 1e-30f, -7.f}));
  EXPECT_EQ((*g->Find("w", TensorDType::kF32))->dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(*g->I32("tokens"), (std::vector<int32_t>{0, 255, -1, 7}));
  EXPECT_EQ(*g->ScalarI64("layers"), int64_t{1} << 40);
  EXPECT_TRUE((*g->Find("layers", TensorDType::kI64))->dims.empty());
  EXPECT_EQ((*g->Find("empty", TensorDType::kF32))->NumElements(), 0);
  EXPECT_EQ(g->Serialize(), f.Serialize());
}

TEST(TensorFileTest, LookupErrorsSayWhatIsWrong) {
  const TensorFile f = Sample();
  EXPECT_EQ(f.F32("missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(f.F32("tokens").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.ScalarF32("w").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TensorFileTest, BadAddsFailAndChangeNothing) {
  TensorFile f = Sample();
  const std::string before = f.Serialize();
  EXPECT_EQ(f.AddF32("w", {1}, std::vector<float>{1.f}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.AddF32("x", {2, 2}, std::vector<float>{1.f}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.AddI32("y", {-1}, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.Serialize(), before);
}

TEST(TensorFileTest, EveryTruncationIsRejected) {
  const std::string bytes = Sample().Serialize();
  for (size_t n = 0; n < bytes.size(); ++n) {
    absl::StatusOr<TensorFile> g = TensorFile::Parse(absl::string_view(bytes).substr(0, n));
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument) << "prefix " << n;
  }
}

TEST(TensorFileTest, MalformedHeadersAreRejected) {
  const std::string good = Sample().Serialize();
  auto expect_bad = [](std::string bytes, const char* why) {
    absl::StatusOr<TensorFile> g = TensorFile::Parse(bytes);
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument) << why;
  };
  std::string b = good;
  b[0] = 'X';
  expect_bad(b, "magic");
  b = good;
  b[4] = 2;
  expect_bad(b, "version");
  b = good;
  b[8] = 9;  // count larger than the tensors present
  expect_bad(b, "count");
  expect_bad(good + "x", "trailing byte");
  // First tensor "w": name_len at 12, name at 16, dtype at 17, ndim at 21, dims at 25.
  b = good;
  b[17] = 7;
  expect_bad(b, "dtype");
  b = good;
  b[25 + 7] = static_cast<char>(0x80);  // dims[0] negative
  expect_bad(b, "negative dim");
  b = good;
  b[25 + 6] = 0x7f;  // dims[0] enormous: the product must not overflow past the check
  expect_bad(b, "huge dim");
  TensorFile dup;
  ASSERT_TRUE(dup.AddI32("a", {1}, std::vector<int32_t>{1}).ok());
  ASSERT_TRUE(dup.AddI32("b", {1}, std::vector<int32_t>{2}).ok());
  b = dup.Serialize();
  b[b.find('b')] = 'a';
  expect_bad(b, "duplicate name");
}

TEST(TensorFileTest, LoadOfMissingFileIsNotFound) {
  EXPECT_EQ(TensorFile::Load("/nonexistent/dir/x.sytf").status().code(), absl::StatusCode::kNotFound);
}

// Python reads the C++ file, adds a tensor computed from it, and writes a new file.
TEST(TensorFileTest, PythonImplementationReadsAndWritesTheSameFormat) {
  const std::string dir = ::testing::TempDir();
  const std::string in = dir + "/sytf_cpp.sytf", out = dir + "/sytf_py.sytf";
  ASSERT_TRUE(Sample().Save(in).ok());
  const std::string script = absl::StrCat(
      "import sys; sys.path.insert(0, '", SY_TENSOR_FILE_PY_DIR, "'); import tensor_file as tf; ",
      "t = tf.read('", in, "'); t['w_sum'] = t['w'].sum(axis=1); tf.write('", out, "', t)");
  const std::string command = absl::StrCat(SY_PYTHON, " -c \"", script, "\"");
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  absl::StatusOr<TensorFile> g = TensorFile::Load(out);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->names(), (std::vector<std::string>{"w", "tokens", "layers", "empty", "w_sum"}));
  EXPECT_EQ(*g->F32("w_sum"), (std::vector<float>{-0.5f, -3.75f}));
  EXPECT_EQ(*g->ScalarI64("layers"), int64_t{1} << 40);
  EXPECT_TRUE((*g->Find("layers", TensorDType::kI64))->dims.empty());
  EXPECT_EQ((*g->Find("empty", TensorDType::kF32))->dims, (std::vector<int64_t>{0, 5}));
  std::remove(in.c_str());
  std::remove(out.c_str());
}

}  // namespace
}  // namespace sy::reference
