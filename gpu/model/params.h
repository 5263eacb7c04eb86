// The parameter block: every parameter of the model in ONE contiguous allocation
// on the backend's device, laid out in the canonical order of the shared spec
// (wte, wpe, per layer ln1..ln2 then dense FFN or Switch FFN, lnf). Sizes are
// computed first (ParamInfos), then views are carved out by offset. Gradients,
// Adam moments and checkpoints use the same layout. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gpu/backend.h"
#include "gpu/model/config.h"
#include "gpu/tensor.h"

namespace sy::gpu {

struct ParamInfo {
  std::string name;   // e.g. "wte", "layer0.qkv_w", "layer1.expert_w_in", "lnf_b"
  Shape shape;        // e.g. {C, 3C}; experts {E, C, F}
  int64_t offset = 0; // in elements from the start of the block
  int64_t numel = 0;
  bool decays = false;  // AdamW weight decay applies (matrices only)
  // Router weights only (ModelConfig::skew): columns [0, skewed_columns) start scaled
  // by 1 + init_skew. Carried here so every process that initialises a slice (the
  // trainer, an expert host's dense shard) applies the same skew from ParamInfos.
  float init_skew = 0.0f;
  int skewed_columns = 0;
};

// The canonical parameter list of `config` (assumed valid), offsets packed in order.
std::vector<ParamInfo> ParamInfos(const ModelConfig& config);
// Total elements of the block.
int64_t ParamCount(const std::vector<ParamInfo>& infos);

class ParamBlock {
 public:
  // Allocates an uninitialised block for `infos` on `backend` (which must outlive it).
  static absl::StatusOr<std::unique_ptr<ParamBlock>> Create(Backend* backend,
                                                            std::vector<ParamInfo> infos);
  ~ParamBlock();
  ParamBlock(const ParamBlock&) = delete;
  ParamBlock& operator=(const ParamBlock&) = delete;

  float* data() const { return data_; }  // device memory, size() elements
  int64_t size() const { return size_; }
  const std::vector<ParamInfo>& infos() const { return infos_; }
  Backend* backend() const { return backend_; }

  // View of parameter `index` / named parameter (kNotFound if absent).
  TensorView View(size_t index) const;
  absl::StatusOr<TensorView> Find(absl::string_view name) const;
  // Device pointer of a named parameter; nullptr when absent.
  float* Get(absl::string_view name) const;

  absl::Status SetZero();
  // Host copies of the whole block in canonical order (size() floats).
  absl::Status CopyToHost(std::vector<float>* out) const;
  // kInvalidArgument (block unchanged) when host.size() != size().
  absl::Status CopyFromHost(const std::vector<float>& host);
  // Copies another block with the same layout (kInvalidArgument otherwise).
  absl::Status CopyFrom(const ParamBlock& other);

 private:
  ParamBlock(Backend* backend, std::vector<ParamInfo> infos, float* data, int64_t size);
  Backend* backend_;
  std::vector<ParamInfo> infos_;
  float* data_;
  int64_t size_;
};

}  // namespace sy::gpu
