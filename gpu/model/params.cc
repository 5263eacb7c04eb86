// The canonical parameter layout of the spec and the one-block ParamBlock.
#include "gpu/model/params.h"

#include "absl/strings/str_cat.h"

namespace sy::gpu {

std::vector<ParamInfo> ParamInfos(const ModelConfig& cfg) {
  const int64_t V = cfg.vocab, T = cfg.context, C = cfg.d_model, F = cfg.d_ff, E = cfg.experts;
  std::vector<ParamInfo> infos;
  int64_t offset = 0;
  auto add = [&](std::string name, Shape shape, bool decays) {
    ParamInfo info{std::move(name), shape, offset, NumElements(shape), decays, 0.0f, 0};
    offset += info.numel;
    infos.push_back(std::move(info));
  };
  add("wte", {V, C}, true);
  add("wpe", {T, C}, true);
  for (int l = 0; l < cfg.layers; ++l) {
    const std::string p = absl::StrCat("layer", l, ".");
    add(p + "ln1_w", {C}, false);
    add(p + "ln1_b", {C}, false);
    add(p + "qkv_w", {C, 3 * C}, true);
    add(p + "qkv_b", {3 * C}, false);
    add(p + "proj_w", {C, C}, true);
    add(p + "proj_b", {C}, false);
    add(p + "ln2_w", {C}, false);
    add(p + "ln2_b", {C}, false);
    if (cfg.IsSwitchLayer(l)) {
      add(p + "router_w", {C, E}, true);
      if (cfg.skew > 0.0f) {
        infos.back().init_skew = cfg.skew;
        infos.back().skewed_columns = cfg.SkewedExperts();
      }
      add(p + "expert_w_in", {E, C, F}, true);
      add(p + "expert_b_in", {E, F}, false);
      add(p + "expert_w_out", {E, F, C}, true);
      add(p + "expert_b_out", {E, C}, false);
    } else {
      add(p + "fc_w", {C, F}, true);
      add(p + "fc_b", {F}, false);
      add(p + "fcproj_w", {F, C}, true);
      add(p + "fcproj_b", {C}, false);
    }
  }
  add("lnf_w", {C}, false);
  add("lnf_b", {C}, false);
  return infos;
}

int64_t ParamCount(const std::vector<ParamInfo>& infos) {
  return infos.empty() ? 0 : infos.back().offset + infos.back().numel;
}

absl::StatusOr<std::unique_ptr<ParamBlock>> ParamBlock::Create(Backend* backend, std::vector<ParamInfo> infos) {
  if (backend == nullptr) return absl::InvalidArgumentError("ParamBlock: null backend");
  const int64_t size = ParamCount(infos);
  auto mem = backend->Alloc(static_cast<size_t>(size) * sizeof(float));
  if (!mem.ok()) return mem.status();
  return std::unique_ptr<ParamBlock>(new ParamBlock(backend, std::move(infos), static_cast<float*>(*mem), size));
}

ParamBlock::ParamBlock(Backend* backend, std::vector<ParamInfo> infos, float* data, int64_t size)
    : backend_(backend), infos_(std::move(infos)), data_(data), size_(size) {}

ParamBlock::~ParamBlock() { backend_->Free(data_); }

TensorView ParamBlock::View(size_t index) const {
  const ParamInfo& info = infos_.at(index);
  return TensorView{data_ + info.offset, DType::kF32, info.shape, backend_->device()};
}

absl::StatusOr<TensorView> ParamBlock::Find(absl::string_view name) const {
  for (size_t i = 0; i < infos_.size(); ++i) {
    if (infos_[i].name == name) return View(i);
  }
  return absl::NotFoundError(absl::StrCat("no parameter named \"", name, "\""));
}

float* ParamBlock::Get(absl::string_view name) const {
  for (const ParamInfo& info : infos_) {
    if (info.name == name) return data_ + info.offset;
  }
  return nullptr;
}

absl::Status ParamBlock::SetZero() { return backend_->Zero(data_, size_ * sizeof(float)); }

absl::Status ParamBlock::CopyToHost(std::vector<float>* out) const {
  out->resize(size_);
  return backend_->CopyDeviceToHost(out->data(), data_, size_ * sizeof(float));
}

absl::Status ParamBlock::CopyFromHost(const std::vector<float>& host) {
  if (static_cast<int64_t>(host.size()) != size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter block holds ", size_, " floats, host copy has ", host.size()));
  }
  return backend_->CopyHostToDevice(data_, host.data(), size_ * sizeof(float));
}

absl::Status ParamBlock::CopyFrom(const ParamBlock& other) {
  if (other.size_ != size_ || other.infos_.size() != infos_.size()) {
    return absl::InvalidArgumentError("CopyFrom: parameter layouts differ");
  }
  if (other.backend_ != backend_) {
    std::vector<float> host;
    absl::Status s = other.CopyToHost(&host);
    return s.ok() ? CopyFromHost(host) : s;
  }
  return backend_->CopyDeviceToDevice(data_, other.data_, size_ * sizeof(float));
}

}  // namespace sy::gpu
