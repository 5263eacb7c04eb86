// SYTF reader and writer (format in tensor_file.h). Parsing checks every length
// against the bytes that remain before using it, so a hostile or truncated file
// yields an error, never an out-of-bounds read or a huge allocation.
#include "tests/reference/tensor_file.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "SYTF is little endian; add byte swapping");

namespace sy::reference {
namespace {

constexpr char kMagic[4] = {'S', 'Y', 'T', 'F'};
constexpr uint32_t kVersion = 1;

size_t ElementSize(TensorDType dtype) { return dtype == TensorDType::kI64 ? 8 : 4; }

const char* DTypeName(TensorDType dtype) {
  switch (dtype) {
    case TensorDType::kF32: return "f32";
    case TensorDType::kI32: return "i32";
    case TensorDType::kI64: return "i64";
  }
  return "unknown";
}

template <typename T>
void Put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

// Consumes bytes from the front of a buffer; every read is bounds-checked.
class Cursor {
 public:
  explicit Cursor(absl::string_view bytes) : rest_(bytes) {}
  template <typename T>
  bool Get(T& value) {
    if (rest_.size() < sizeof(T)) return false;
    std::memcpy(&value, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return true;
  }
  bool Take(uint64_t n, absl::string_view& out) {
    if (rest_.size() < n) return false;
    out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }
  size_t remaining() const { return rest_.size(); }
  size_t offset(absl::string_view whole) const { return whole.size() - rest_.size(); }

 private:
  absl::string_view rest_;
};

template <typename T>
absl::StatusOr<std::vector<T>> Values(const TensorFile& file, const std::string& name, TensorDType dtype) {
  absl::StatusOr<const StoredTensor*> t = file.Find(name, dtype);
  if (!t.ok()) return t.status();
  std::vector<T> values((*t)->bytes.size() / sizeof(T));
  std::memcpy(values.data(), (*t)->bytes.data(), (*t)->bytes.size());
  return values;
}

}  // namespace

int64_t StoredTensor::NumElements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

absl::Status TensorFile::Add(const std::string& name, TensorDType dtype, std::vector<int64_t> dims,
                             const void* data, int64_t count, size_t element_size) {
  if (Has(name)) return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' already present"));
  int64_t expected = 1;
  for (int64_t d : dims) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has a negative dimension"));
    expected *= d;
  }
  if (expected != count) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "': shape holds ", expected, " elements but ", count, " were given"));
  }
  StoredTensor t;
  t.dtype = dtype;
  t.dims = std::move(dims);
  t.bytes.assign(static_cast<const char*>(data), static_cast<size_t>(count) * element_size);
  tensors_.emplace(name, std::move(t));
  order_.push_back(name);
  return absl::OkStatus();
}

absl::Status TensorFile::AddF32(const std::string& name, std::vector<int64_t> dims, absl::Span<const float> values) {
  return Add(name, TensorDType::kF32, std::move(dims), values.data(), values.size(), sizeof(float));
}
absl::Status TensorFile::AddI32(const std::string& name, std::vector<int64_t> dims,
                                absl::Span<const int32_t> values) {
  return Add(name, TensorDType::kI32, std::move(dims), values.data(), values.size(), sizeof(int32_t));
}
absl::Status TensorFile::AddI64(const std::string& name, std::vector<int64_t> dims,
                                absl::Span<const int64_t> values) {
  return Add(name, TensorDType::kI64, std::move(dims), values.data(), values.size(), sizeof(int64_t));
}

absl::StatusOr<const StoredTensor*> TensorFile::Find(const std::string& name, TensorDType dtype) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return absl::NotFoundError(absl::StrCat("no tensor '", name, "'"));
  if (it->second.dtype != dtype) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' is ", DTypeName(it->second.dtype),
                                                   ", not ", DTypeName(dtype)));
  }
  return &it->second;
}

absl::StatusOr<std::vector<float>> TensorFile::F32(const std::string& name) const {
  return Values<float>(*this, name, TensorDType::kF32);
}
absl::StatusOr<std::vector<int32_t>> TensorFile::I32(const std::string& name) const {
  return Values<int32_t>(*this, name, TensorDType::kI32);
}
absl::StatusOr<std::vector<int64_t>> TensorFile::I64(const std::string& name) const {
  return Values<int64_t>(*this, name, TensorDType::kI64);
}

absl::StatusOr<float> TensorFile::ScalarF32(const std::string& name) const {
  absl::StatusOr<std::vector<float>> v = F32(name);
  if (!v.ok()) return v.status();
  if (v->size() != 1) return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' is not a scalar"));
  return (*v)[0];
}

absl::StatusOr<int64_t> TensorFile::ScalarI64(const std::string& name) const {
  absl::StatusOr<std::vector<int64_t>> v = I64(name);
  if (!v.ok()) return v.status();
  if (v->size() != 1) return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' is not a scalar"));
  return (*v)[0];
}

std::string TensorFile::Serialize() const {
  std::string out(kMagic, sizeof(kMagic));
  Put<uint32_t>(out, kVersion);
  Put<uint32_t>(out, static_cast<uint32_t>(order_.size()));
  for (const std::string& name : order_) {
    const StoredTensor& t = tensors_.at(name);
    Put<uint32_t>(out, static_cast<uint32_t>(name.size()));
    out += name;
    Put<uint32_t>(out, static_cast<uint32_t>(t.dtype));
    Put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) Put<int64_t>(out, d);
    out += t.bytes;
  }
  return out;
}

absl::StatusOr<TensorFile> TensorFile::Parse(absl::string_view bytes) {
  Cursor in(bytes);
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("tensor file: ", what, " (at byte ", in.offset(bytes), ")"));
  };
  absl::string_view magic;
  uint32_t version = 0, count = 0;
  if (!in.Take(4, magic) || magic != absl::string_view(kMagic, 4)) return bad("bad magic");
  if (!in.Get(version) || version != kVersion) return bad(absl::StrCat("unsupported version ", version));
  if (!in.Get(count)) return bad("truncated header");
  TensorFile file;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t name_len = 0, dtype = 0, ndim = 0;
    absl::string_view name;
    if (!in.Get(name_len) || !in.Take(name_len, name)) return bad("truncated name");
    if (!in.Get(dtype) || !in.Get(ndim)) return bad(absl::StrCat("truncated header of '", name, "'"));
    if (dtype > static_cast<uint32_t>(TensorDType::kI64)) return bad(absl::StrCat("unknown dtype ", dtype));
    const uint64_t element_size = ElementSize(static_cast<TensorDType>(dtype));
    if (ndim > in.remaining() / sizeof(int64_t)) return bad(absl::StrCat("truncated dims of '", name, "'"));
    std::vector<int64_t> dims(ndim);
    bool empty = false;
    for (int64_t& d : dims) {
      in.Get(d);
      if (d < 0) return bad(absl::StrCat("negative dimension in '", name, "'"));
      empty = empty || d == 0;
    }
    // Bound the product by what the file still holds, so it cannot overflow.
    const uint64_t limit = in.remaining() / element_size;
    uint64_t elements = empty ? 0 : 1;
    for (int64_t d : dims) {
      if (empty) break;
      if (elements > limit / static_cast<uint64_t>(d)) return bad(absl::StrCat("data of '", name, "' exceeds the file"));
      elements *= static_cast<uint64_t>(d);
    }
    absl::string_view data;
    if (!in.Take(elements * element_size, data)) return bad(absl::StrCat("truncated data of '", name, "'"));
    const std::string key(name);
    if (file.Has(key)) return bad(absl::StrCat("tensor '", key, "' appears twice"));
    StoredTensor t;
    t.dtype = static_cast<TensorDType>(dtype);
    t.dims = std::move(dims);
    t.bytes.assign(data.data(), data.size());
    file.tensors_.emplace(key, std::move(t));
    file.order_.push_back(key);
  }
  if (in.remaining() != 0) return bad(absl::StrCat(in.remaining(), " trailing bytes"));
  return file;
}

absl::Status TensorFile::Save(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string bytes = Serialize();
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write tensor file ", path));
  return absl::OkStatus();
}

absl::StatusOr<TensorFile> TensorFile::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open tensor file ", path));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  absl::StatusOr<TensorFile> file = Parse(bytes.str());
  if (!file.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", file.status().message()));
  return file;
}

}  // namespace sy::reference
