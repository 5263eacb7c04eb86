// The state of one actor's parameters on an expert host: weights and AdamW
// moments (device memory, one contiguous block of segments), the version (steps
// applied), and the open step's gradient contributions, one per micro-batch,
// combined in the fixed pairwise tree of gpu/model/grad_tree.h. An expert's
// weights, moments and gradients are each a block of gpu::ExpertLayout; a dense
// shard's are one parameter tensor. Not thread-safe: owned by one actor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gpu/backend.h"
#include "gpu/model/grad_tree.h"
#include "gpu/model/optimizer.h"

namespace sy::expert_host {

// Device memory owned by one value (freed on destruction).
class DeviceArray {
 public:
  DeviceArray() = default;
  static absl::StatusOr<DeviceArray> Create(gpu::Backend* backend, int64_t floats);
  DeviceArray(DeviceArray&& other) noexcept { *this = std::move(other); }
  DeviceArray& operator=(DeviceArray&& other) noexcept;
  ~DeviceArray();
  float* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  gpu::Backend* backend_ = nullptr;
  float* data_ = nullptr;
  int64_t size_ = 0;
};

// One gradient-norm segment held by the actor (see gpu::GradSegment).
struct StateSegment {
  uint32_t param_index = 0;
  int expert = -1;
  int64_t numel = 0;
  bool decays = false;  // AdamW weight decay applies
};

class ParamState {
 public:
  // `initial` holds the segments' initial values back to back.
  static absl::StatusOr<std::unique_ptr<ParamState>> Create(gpu::Backend* backend, std::vector<StateSegment> segments,
                                                            const std::vector<float>& initial, int num_micro_batches,
                                                            const gpu::AdamWConfig& adam);

  gpu::Backend* backend() const { return backend_; }
  const float* params() const { return params_.data(); }
  int64_t size() const { return params_.size(); }
  const std::vector<StateSegment>& segments() const { return segments_; }
  uint64_t version() const { return version_; }
  int contributions() const { return contributions_; }
  int num_micro_batches() const { return static_cast<int>(seen_.size()); }
  // Whether micro-batch m (in range) has a contribution in the open step.
  bool has_contribution(int m) const { return seen_[static_cast<size_t>(m)]; }
  bool finalized() const { return finalized_; }

  // Keeps micro-batch m's gradient (device, size() floats) for the open step.
  // InvalidArgument for m out of range; AlreadyExists for a second one;
  // FailedPrecondition once the step is finalized.
  absl::Status AddContribution(int m, const float* grad) { return AddContribution(m, m + 1, grad); }
  // Keeps the sum of micro-batches [lo, hi), pre-summed by its sender in the fixed tree
  // (a node of it: InvalidArgument otherwise), like hi - lo contributions at once:
  // AlreadyExists when any of them is already here. bf16: it came in bf16
  // (--dense_wire_dtype=bf16), and the step's tree rounds every sum to bf16; the step's
  // first contribution sets that, and one of the other kind is refused (CheckWire).
  absl::Status AddContribution(int lo, int hi, const float* grad, bool bf16 = false);
  // InvalidArgument when the open step's contributions came in the other dtype.
  absl::Status CheckWire(bool bf16) const;
  // Whether the open step's contributions came in bf16 (valid once one is here).
  bool bf16_step() const { return tree_->rounds(); }
  // Closes the open step: micro-batches that sent nothing count as zero
  // gradients; returns each segment's sum of squares of the combined gradient.
  absl::StatusOr<std::vector<double>> Finalize();
  // AdamW step `step` (== version()+1) on the finalized gradient scaled by
  // clip_scale (when < 1); the version becomes `step` and the tree is reset.
  absl::Status Apply(uint64_t step, float clip_scale, float lr);
  // FNV-1a 64 over weights, then m, then v (bit patterns).
  absl::StatusOr<uint64_t> Checksum() const;
  // The whole optimizer state as bytes: weights, then m, then v (3 * size() f32
  // values), for checkpoints. The version travels beside it.
  absl::StatusOr<std::string> SaveState() const;
  // Installs SaveState bytes as the state at `version` and drops the open step's
  // contributions (restore from a checkpoint). InvalidArgument (and no change) when
  // the size does not match.
  absl::Status LoadState(uint64_t version, absl::string_view bytes);
  // Forgets the open step's contributions (finalized or not); weights, moments and
  // version stay (a failover: the trainers redo the step).
  void DropOpenStep();

 private:
  ParamState() = default;
  gpu::Backend* backend_ = nullptr;
  std::vector<StateSegment> segments_;
  gpu::AdamWConfig adam_;
  DeviceArray params_, m_, v_, grad_, zeros_;
  std::unique_ptr<gpu::GradTree> tree_;
  std::vector<bool> seen_;
  int contributions_ = 0;
  bool finalized_ = false;
  uint64_t version_ = 0;
};

}  // namespace sy::expert_host
