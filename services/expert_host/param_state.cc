// One actor's parameters, moments and gradient tree (see param_state.h).
#include "services/expert_host/param_state.h"

#include "absl/strings/str_cat.h"
#include "common/base/finite.h"
#include "services/cluster/param_checksum.h"

namespace sy::expert_host {

absl::StatusOr<DeviceArray> DeviceArray::Create(gpu::Backend* backend, int64_t floats) {
  DeviceArray a;
  absl::StatusOr<void*> mem = backend->Alloc(static_cast<size_t>(std::max<int64_t>(floats, 1)) * sizeof(float));
  if (!mem.ok()) return mem.status();
  a.backend_ = backend;
  a.data_ = static_cast<float*>(*mem);
  a.size_ = floats;
  return a;
}

DeviceArray& DeviceArray::operator=(DeviceArray&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) backend_->Free(data_);
    backend_ = other.backend_;
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

DeviceArray::~DeviceArray() {
  if (data_ != nullptr) backend_->Free(data_);
}

absl::StatusOr<std::unique_ptr<ParamState>> ParamState::Create(gpu::Backend* backend,
                                                               std::vector<StateSegment> segments,
                                                               const std::vector<float>& initial,
                                                               int num_micro_batches, const gpu::AdamWConfig& adam) {
  int64_t total = 0;
  for (const StateSegment& s : segments) total += s.numel;
  if (total != static_cast<int64_t>(initial.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("param state: ", initial.size(), " initial values for ", total, " elements"));
  }
  std::unique_ptr<ParamState> state(new ParamState());
  state->backend_ = backend;
  state->segments_ = std::move(segments);
  state->adam_ = adam;
  for (DeviceArray* a : {&state->params_, &state->m_, &state->v_, &state->grad_, &state->zeros_}) {
    absl::StatusOr<DeviceArray> created = DeviceArray::Create(backend, total);
    if (!created.ok()) return created.status();
    *a = *std::move(created);
    if (absl::Status s = backend->Zero(a->data(), total * sizeof(float)); !s.ok()) return s;
  }
  if (absl::Status s = backend->CopyHostToDevice(state->params_.data(), initial.data(), total * sizeof(float));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::unique_ptr<gpu::GradTree>> tree = gpu::GradTree::Create(backend, total, num_micro_batches);
  if (!tree.ok()) return tree.status();
  state->tree_ = *std::move(tree);
  state->seen_.assign(num_micro_batches, false);
  return state;
}

absl::Status ParamState::CheckWire(bool bf16) const {
  if (contributions_ == 0 || tree_->rounds() == bf16) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "step ", version_ + 1, "'s gradients came in ", bf16 ? "f32" : "bf16", "; a ", bf16 ? "bf16" : "f32",
      " contribution cannot join them (every trainer must run with the same --dense_wire_dtype)"));
}

absl::Status ParamState::AddContribution(int lo, int hi, const float* grad, bool bf16) {
  if (finalized_) {
    return absl::FailedPreconditionError(absl::StrCat("step ", version_ + 1, " is already closed"));
  }
  if (lo < 0 || hi <= lo || hi > static_cast<int>(seen_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("micro-batches [", lo, ", ", hi, ") out of range [0, ",
                                                   seen_.size(), ")"));
  }
  if (absl::Status s = CheckWire(bf16); !s.ok()) return s;
  // The step's first contribution says whether its tree rounds every sum to bf16.
  if (contributions_ == 0) tree_->set_bf16_ranges(bf16 ? std::vector<std::pair<int64_t, int64_t>>{{0, size()}}
                                                       : std::vector<std::pair<int64_t, int64_t>>{});
  if (absl::Status s = tree_->AddRange(lo, hi, grad); !s.ok()) return s;
  for (int m = lo; m < hi; ++m) seen_[m] = true;
  contributions_ += hi - lo;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> ParamState::Finalize() {
  if (!finalized_) {
    for (size_t m = 0; m < seen_.size(); ++m) {
      if (seen_[m]) continue;
      if (absl::Status s = tree_->Add(static_cast<int>(m), zeros_.data()); !s.ok()) return s;
      seen_[m] = true;
    }
    absl::StatusOr<const float*> sum = tree_->Result();
    if (!sum.ok()) return sum.status();
    if (absl::Status s = backend_->CopyDeviceToDevice(grad_.data(), *sum, size() * sizeof(float)); !s.ok()) return s;
    finalized_ = true;
  }
  std::vector<double> squares;
  int64_t offset = 0;
  for (const StateSegment& seg : segments_) {
    absl::StatusOr<double> sq = backend_->SumSquares(grad_.data() + offset, seg.numel);
    if (!sq.ok()) return sq.status();
    squares.push_back(*sq);
    offset += seg.numel;
  }
  return squares;
}

absl::Status ParamState::Apply(uint64_t step, float clip_scale, float lr) {
  if (step != version_ + 1) {
    return absl::FailedPreconditionError(absl::StrCat("apply of step ", step, " at version ", version_));
  }
  if (!finalized_) return absl::FailedPreconditionError(absl::StrCat("step ", step, " is not closed yet"));
  // The clip scale multiplies each gradient inside the update: the bits of scaling
  // the gradients first, without a pass of its own.
  const float grad_scale = clip_scale < 1.0f ? clip_scale : 1.0f;
  int64_t offset = 0;
  for (const StateSegment& seg : segments_) {
    backend_->AdamWUpdate(params_.data() + offset, m_.data() + offset, v_.data() + offset, grad_.data() + offset,
                          seg.numel, lr, adam_.beta1, adam_.beta2, adam_.eps, seg.decays ? adam_.weight_decay : 0.0f,
                          grad_scale, static_cast<int64_t>(step));
    offset += seg.numel;
  }
  if (absl::Status s = backend_->Synchronize(); !s.ok()) return s;
  DropOpenStep();
  version_ = step;
  return absl::OkStatus();
}

void ParamState::DropOpenStep() {
  tree_->Reset();
  seen_.assign(seen_.size(), false);
  contributions_ = 0;
  finalized_ = false;
}

absl::StatusOr<uint64_t> ParamState::Checksum() const {
  cluster::ParamChecksum checksum;
  std::vector<float> host(static_cast<size_t>(size()));
  for (const DeviceArray* a : {&params_, &m_, &v_}) {
    if (absl::Status s = backend_->CopyDeviceToHost(host.data(), a->data(), size() * sizeof(float)); !s.ok()) return s;
    checksum.Add(host.data(), host.size());
  }
  return checksum.value();
}

absl::StatusOr<std::string> ParamState::SaveState() const {
  const size_t bytes = static_cast<size_t>(size()) * sizeof(float);
  std::string out(3 * bytes, '\0');
  size_t offset = 0;
  for (const DeviceArray* a : {&params_, &m_, &v_}) {
    if (absl::Status s = backend_->CopyDeviceToHost(out.data() + offset, a->data(), bytes); !s.ok()) return s;
    offset += bytes;
  }
  return out;
}

absl::Status ParamState::LoadState(uint64_t version, absl::string_view bytes) {
  const size_t each = static_cast<size_t>(size()) * sizeof(float);
  if (bytes.size() != 3 * each) {
    return absl::InvalidArgumentError(absl::StrCat("state of ", bytes.size(), " bytes, expected ", 3 * each,
                                                   " (weights, m and v of ", size(), " values)"));
  }
  // A restored NaN or Inf would poison every later step: refuse the state, keep the current one.
  if (absl::Status s = RequireFiniteF32Bytes(bytes, "restored state (weights, m, v)"); !s.ok()) return s;
  size_t offset = 0;
  for (const DeviceArray* a : {&params_, &m_, &v_}) {
    if (absl::Status s = backend_->CopyHostToDevice(a->data(), bytes.data() + offset, each); !s.ok()) return s;
    offset += each;
  }
  if (absl::Status s = backend_->Synchronize(); !s.ok()) return s;
  DropOpenStep();
  version_ = version;
  return absl::OkStatus();
}

}  // namespace sy::expert_host
