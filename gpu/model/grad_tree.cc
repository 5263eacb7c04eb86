// The fixed pairwise gradient tree (see grad_tree.h). Completed nodes wait in
// done_ until their sibling completes; then parent = left + right.
#include "gpu/model/grad_tree.h"

#include "absl/strings/str_cat.h"

namespace sy::gpu {

int GradTree::Split(int lo, int hi) {
  const int n = hi - lo;
  int h = 1;
  while (h * 2 < n) h *= 2;
  return lo + h;
}

bool GradTree::IsNode(int lo, int hi, int M) {
  int a = 0, b = M;
  while (true) {
    if (a == lo && b == hi) return true;
    if (b - a < 2 || lo < a || hi > b) return false;
    const int mid = Split(a, b);
    if (hi <= mid) {
      b = mid;
    } else if (lo >= mid) {
      a = mid;
    } else {
      return false;
    }
  }
}

std::vector<std::pair<int, int>> GradTree::Cover(int lo, int hi, int M) {
  std::vector<std::pair<int, int>> nodes;
  // Depth first from the root: a node inside [lo, hi) is taken whole, one that
  // straddles an end is split (a leaf never straddles).
  std::vector<std::pair<int, int>> stack{{0, M}};
  while (!stack.empty()) {
    const auto [a, b] = stack.back();
    stack.pop_back();
    if (b <= lo || a >= hi || a >= b) continue;
    if (lo <= a && b <= hi) {
      nodes.emplace_back(a, b);
      continue;
    }
    const int mid = Split(a, b);
    stack.emplace_back(mid, b);
    stack.emplace_back(a, mid);
  }
  return nodes;
}

absl::StatusOr<std::unique_ptr<GradTree>> GradTree::Create(Backend* backend, int64_t size, int num_micro_batches) {
  if (backend == nullptr || size < 0 || num_micro_batches < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("GradTree: need a backend, size >= 0 and M >= 1 (got M=", num_micro_batches, ")"));
  }
  return std::unique_ptr<GradTree>(new GradTree(backend, size, num_micro_batches));
}

GradTree::GradTree(Backend* backend, int64_t size, int m) : backend_(backend), size_(size), m_(m), seen_(m, false) {}

GradTree::~GradTree() {
  for (float* b : all_) backend_->Free(b);
}

absl::StatusOr<float*> GradTree::TakeBuffer() {
  if (!free_.empty()) {
    float* b = free_.back();
    free_.pop_back();
    return b;
  }
  auto mem = backend_->Alloc(static_cast<size_t>(size_) * sizeof(float));
  if (!mem.ok()) return mem.status();
  all_.push_back(static_cast<float*>(*mem));
  peak_buffers_ = std::max<int>(peak_buffers_, static_cast<int>(all_.size()));
  return all_.back();
}

void GradTree::ReturnBuffer(float* buffer) { free_.push_back(buffer); }

absl::Status GradTree::Add(int m, const float* grad) { return AddRange(m, m + 1, grad); }

absl::Status GradTree::AddRange(int lo, int hi, const float* grad) {
  if (lo < 0 || hi > m_ || lo >= hi || !IsNode(lo, hi, m_)) {
    return absl::InvalidArgumentError(absl::StrCat("GradTree: [", lo, ", ", hi, ") is not a node of the tree over [0, ",
                                                   m_, ")"));
  }
  for (int i = lo; i < hi; ++i) {
    if (seen_[i]) return absl::AlreadyExistsError(absl::StrCat("GradTree: micro-batch ", i, " was already added"));
  }
  auto buffer = TakeBuffer();
  if (!buffer.ok()) return buffer.status();
  absl::Status copied = backend_->CopyDeviceToDevice(*buffer, grad, size_ * sizeof(float));
  if (!copied.ok()) {
    ReturnBuffer(*buffer);
    return copied;
  }
  Round(*buffer);
  for (int i = lo; i < hi; ++i) seen_[i] = true;
  return Insert(lo, hi, *buffer);
}

absl::Status GradTree::Insert(int lo, int hi, float* buffer) {
  while (!(lo == 0 && hi == m_)) {
    // Find the parent of [lo, hi) by descending from the root.
    int a = 0, b = m_;
    while (true) {
      const int mid = Split(a, b);
      if ((a == lo && mid == hi) || (mid == lo && b == hi)) break;
      if (hi <= mid) {
        b = mid;
      } else {
        a = mid;
      }
    }
    const int mid = Split(a, b);
    const bool is_left = lo == a;
    const std::pair<int, int> sibling = is_left ? std::make_pair(mid, b) : std::make_pair(a, mid);
    auto it = done_.find(sibling);
    if (it == done_.end()) {
      done_[{lo, hi}] = buffer;
      return absl::OkStatus();
    }
    float* left = is_left ? buffer : it->second;
    float* right = is_left ? it->second : buffer;
    backend_->Add(left, left, right, size_);  // parent = left + right, stored in left's buffer
    ReturnBuffer(right);
    done_.erase(it);
    Round(left);
    buffer = left;
    lo = a;
    hi = b;
  }
  done_[{0, m_}] = buffer;
  return absl::OkStatus();
}

void GradTree::Round(float* buffer) {
  for (const auto& [first, end] : bf16_ranges_) backend_->RoundToBf16(buffer + first, end - first);
}

bool GradTree::complete() const { return done_.count({0, m_}) != 0; }

absl::StatusOr<const float*> GradTree::Result() const {
  auto it = done_.find({0, m_});
  if (it == done_.end()) return absl::FailedPreconditionError("GradTree: not every micro-batch has been added");
  return it->second;
}

void GradTree::Reset() {
  for (auto& [node, buffer] : done_) free_.push_back(buffer);
  done_.clear();
  seen_.assign(m_, false);
}

}  // namespace sy::gpu
