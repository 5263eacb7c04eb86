// model.bin writer and reader (format in weights_file.h). The reader checks every
// length against the bytes left before trusting it.
#include "gpu/model/weights_file.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/fnv1a.h"
#include "gpu/tensor.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "model.bin is little endian; add byte swapping");

namespace sy::gpu {
namespace {

constexpr char kWeightsMagic[4] = {'S', 'Y', 'W', 'T'};
constexpr uint32_t kWeightsVersion = 1;
constexpr uint32_t kMaxNameBytes = 1024;
constexpr uint32_t kMaxDims = 8;

template <typename T>
void Append(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

uint64_t ValuesChecksum(const std::vector<float>& values) {
  Fnv1a64 hash;
  hash.Add(values.data(), values.size() * sizeof(float));
  return hash.value();
}

// Reads model.bin front to back; `what` names the part being read for the error.
class WeightsReader {
 public:
  explicit WeightsReader(absl::string_view bytes) : bytes_(bytes) {}

  template <typename T>
  absl::StatusOr<T> Next(absl::string_view what) {
    T value;
    if (absl::Status s = Need(sizeof(T), what); !s.ok()) return s;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  absl::StatusOr<absl::string_view> Bytes(uint64_t n, absl::string_view what) {
    if (absl::Status s = Need(n, what); !s.ok()) return s;
    absl::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  uint64_t left() const { return bytes_.size() - pos_; }

 private:
  absl::Status Need(uint64_t n, absl::string_view what) const {
    if (left() >= n) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("truncated: ", what, " needs ", n, " bytes at offset ", pos_, ", ", left(), " left"));
  }
  absl::string_view bytes_;
  uint64_t pos_ = 0;
};

absl::StatusOr<WeightsTensor> ParseTensorHeader(WeightsReader& in, uint32_t index, uint64_t* total) {
  const std::string which = absl::StrCat("tensor ", index);
  absl::StatusOr<uint32_t> name_len = in.Next<uint32_t>(which + " name length");
  if (!name_len.ok()) return name_len.status();
  if (*name_len == 0 || *name_len > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(which, " has a name of ", *name_len, " bytes"));
  }
  absl::StatusOr<absl::string_view> name = in.Bytes(*name_len, which + " name");
  if (!name.ok()) return name.status();
  WeightsTensor tensor{std::string(*name), {}};
  absl::StatusOr<uint32_t> ndim = in.Next<uint32_t>(which + " rank");
  if (!ndim.ok()) return ndim.status();
  if (*ndim > kMaxDims) return absl::InvalidArgumentError(absl::StrCat(tensor.name, " has ", *ndim, " dimensions"));
  uint64_t numel = 1;
  for (uint32_t d = 0; d < *ndim; ++d) {
    absl::StatusOr<int64_t> dim = in.Next<int64_t>(tensor.name + " dimensions");
    if (!dim.ok()) return dim.status();
    // Every value takes 4 bytes of the file: a shape past that is a lie, and the bound keeps numel from overflowing.
    if (*dim < 0) return absl::InvalidArgumentError(absl::StrCat(tensor.name, " has dimension ", *dim));
    if (numel > 0 && static_cast<uint64_t>(*dim) > in.left() / 4 / numel) {  // numel * dim values cannot fit
      return absl::InvalidArgumentError(absl::StrCat("truncated: ", tensor.name, " (dimension ", d, " = ", *dim,
                                                     ") needs more values than the ", in.left(), " bytes left"));
    }
    numel *= static_cast<uint64_t>(*dim);
    tensor.dims.push_back(*dim);
  }
  *total += numel;
  return tensor;
}

}  // namespace

Weights WeightsOfParams(const std::vector<ParamInfo>& infos, std::vector<float> values, uint64_t step) {
  Weights weights;
  weights.step = step;
  for (const ParamInfo& info : infos) weights.tensors.push_back({info.name, info.shape});
  weights.checksum = ValuesChecksum(values);
  weights.values = std::move(values);
  return weights;
}

std::string SerializeWeights(const Weights& weights) {
  std::string out(kWeightsMagic, sizeof(kWeightsMagic));
  Append<uint32_t>(out, kWeightsVersion);
  Append<uint64_t>(out, weights.step);
  Append<uint32_t>(out, static_cast<uint32_t>(weights.tensors.size()));
  for (const WeightsTensor& t : weights.tensors) {
    Append<uint32_t>(out, static_cast<uint32_t>(t.name.size()));
    out += t.name;
    Append<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) Append<int64_t>(out, d);
  }
  out.append(reinterpret_cast<const char*>(weights.values.data()), weights.values.size() * sizeof(float));
  Append<uint64_t>(out, ValuesChecksum(weights.values));
  return out;
}

absl::StatusOr<Weights> ParseWeights(absl::string_view bytes) {
  WeightsReader in(bytes);
  absl::StatusOr<absl::string_view> magic = in.Bytes(sizeof(kWeightsMagic), "the magic");
  if (!magic.ok()) return magic.status();
  if (*magic != absl::string_view(kWeightsMagic, sizeof(kWeightsMagic))) {
    return absl::InvalidArgumentError("not a weights file (no SYWT magic)");
  }
  absl::StatusOr<uint32_t> version = in.Next<uint32_t>("the version");
  if (!version.ok()) return version.status();
  if (*version != kWeightsVersion) {
    return absl::InvalidArgumentError(absl::StrCat("weights file version ", *version, ", this build reads ",
                                                   kWeightsVersion));
  }
  Weights weights;
  absl::StatusOr<uint64_t> step = in.Next<uint64_t>("the step");
  absl::StatusOr<uint32_t> count = step.ok() ? in.Next<uint32_t>("the tensor count") : step.status();
  if (!count.ok()) return count.status();
  weights.step = *step;
  uint64_t total = 0;
  for (uint32_t i = 0; i < *count; ++i) {
    absl::StatusOr<WeightsTensor> tensor = ParseTensorHeader(in, i, &total);
    if (!tensor.ok()) return tensor.status();
    weights.tensors.push_back(*std::move(tensor));
  }
  if (total > in.left() / sizeof(float)) {
    return absl::InvalidArgumentError(absl::StrCat("truncated: ", total, " values listed, ", in.left(), " bytes left"));
  }
  absl::StatusOr<absl::string_view> data = in.Bytes(total * sizeof(float), "the values");
  absl::StatusOr<uint64_t> checksum = data.ok() ? in.Next<uint64_t>("the checksum") : data.status();
  if (!checksum.ok()) return checksum.status();
  if (in.left() != 0) return absl::InvalidArgumentError(absl::StrCat(in.left(), " bytes after the checksum"));
  weights.values.resize(total);
  std::memcpy(weights.values.data(), data->data(), data->size());
  weights.checksum = ValuesChecksum(weights.values);
  if (weights.checksum != *checksum) {
    return absl::DataLossError("the values do not match the file's checksum (the file is corrupt)");
  }
  return weights;
}

absl::Status CheckWeightsFit(const Weights& weights, const std::vector<ParamInfo>& infos) {
  for (size_t i = 0; i < infos.size() && i < weights.tensors.size(); ++i) {
    const WeightsTensor& t = weights.tensors[i];
    if (t.name != infos[i].name || t.dims != infos[i].shape) {
      return absl::InvalidArgumentError(absl::StrCat("shape mismatch: tensor ", i, " is ", t.name, " ",
                                                     ShapeString(t.dims), ", the model expects ", infos[i].name, " ",
                                                     ShapeString(infos[i].shape)));
    }
  }
  if (weights.tensors.size() != infos.size()) {
    return absl::InvalidArgumentError(absl::StrCat("shape mismatch: ", weights.tensors.size(),
                                                   " tensors, the model has ", infos.size(), " parameters"));
  }
  return absl::OkStatus();
}

}  // namespace sy::gpu
