// Combines the M per-micro-batch gradient blocks of one global step in the FIXED
// pairwise tree of the spec: sum[lo, hi) = sum[lo, lo+h) + sum[lo+h, hi) with h the
// largest power of two < hi-lo. Contributions may arrive in any order (and a
// whole subtree may be added pre-summed); each node is computed as soon as both
// children are present, so the result is bit-identical whatever the arrival order.
// Buffers: O(log M) when micro-batches arrive in order; out-of-order arrivals wait
// in extra buffers until their sibling is complete. Not thread-safe.
//
//   auto tree = GradTree::Create(backend, size, M).value();
//   for (m in any order) tree->Add(m, grads_of_m->data());
//   const float* sum = tree->Result().value();
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gpu/backend.h"

namespace sy::gpu {

class GradTree {
 public:
  // size: elements per gradient block; num_micro_batches M >= 1.
  static absl::StatusOr<std::unique_ptr<GradTree>> Create(Backend* backend, int64_t size,
                                                          int num_micro_batches);
  ~GradTree();

  // Adds micro-batch m's gradient (device pointer, size elements; copied).
  // kInvalidArgument for m out of range, kAlreadyExists when m was already added.
  absl::Status Add(int m, const float* grad);
  // Adds the pre-summed subtree [lo, hi), which must be a node of the tree
  // (kInvalidArgument otherwise) with none of its leaves added yet.
  absl::Status AddRange(int lo, int hi, const float* grad);

  bool complete() const;
  int num_micro_batches() const { return m_; }
  // The sum over [0, M) (device pointer owned by the tree); kFailedPrecondition
  // until complete.
  absl::StatusOr<const float*> Result() const;
  // Forgets all contributions (buffers are kept for the next step).
  void Reset();
  // Elements [first, second) of each range are rounded to the nearest bf16 in every value
  // that enters the tree and in every sum it forms (--dense_wire_dtype=bf16). A node's
  // value is then exact in bf16 whoever sums it, so it travels in bf16 without loss and
  // the result is the same for any split of the micro-batches. Empty: nothing is rounded.
  void set_bf16_ranges(std::vector<std::pair<int64_t, int64_t>> ranges) { bf16_ranges_ = std::move(ranges); }
  bool rounds() const { return !bf16_ranges_.empty(); }
  // Largest number of device buffers held at once so far.
  int peak_buffers() const { return peak_buffers_; }

  // The split point h of node [lo, hi) (hi - lo >= 2).
  static int Split(int lo, int hi);
  // True when [lo, hi) is a node of the tree over [0, M).
  static bool IsNode(int lo, int hi, int M);
  // The fewest nodes of the tree over [0, M) that together are [lo, hi) (0 <= lo <= hi
  // <= M), ascending: what a holder of those micro-batches can pre-sum and add whole.
  static std::vector<std::pair<int, int>> Cover(int lo, int hi, int M);

 private:
  GradTree(Backend* backend, int64_t size, int m);
  absl::StatusOr<float*> TakeBuffer();
  void ReturnBuffer(float* buffer);
  absl::Status Insert(int lo, int hi, float* buffer);
  void Round(float* buffer);

  Backend* backend_;
  int64_t size_;
  int m_;
  std::map<std::pair<int, int>, float*> done_;  // completed nodes not yet merged
  std::vector<bool> seen_;                      // leaves covered so far
  std::vector<float*> free_;
  std::vector<float*> all_;
  int peak_buffers_ = 0;
  std::vector<std::pair<int64_t, int64_t>> bf16_ranges_;
};

}  // namespace sy::gpu
