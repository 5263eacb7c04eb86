// Deterministic micro-batches. Global step s has micro-batches 0..M-1, each of B
// sequences of T input tokens and their T next-token targets. A training
// micro-batch is a pure function of (seed, step, micro_batch) and the corpus, so
// any trainer can cut any micro-batch and the data never depends on how work is
// spread. Validation uses a fixed set of evenly spaced windows of the val split,
// so val loss is comparable across runs and seeds. Pure functions: thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace sy::trainer {

// Token n = b*T + t: inputs[n] is byte start_b + t, targets[n] is byte start_b + t + 1.
struct MicroBatch {
  int batch = 0;    // B
  int context = 0;  // T
  std::vector<int32_t> inputs;   // (B*T)
  std::vector<int32_t> targets;  // (B*T)
};

// Training micro-batch `micro_batch` of global step `step`: sequence b starts at
// CounterRng(seed, kData, step, micro_batch).Below(b, train.size() - T).
// InvalidArgument when B or T is not positive or the split is shorter than T+1.
absl::StatusOr<MicroBatch> CutTrainMicroBatch(const std::vector<uint8_t>& train, uint64_t seed,
                                              int64_t step, int64_t micro_batch, int batch, int context);

// Validation micro-batch `index` of `num_batches`: the num_batches*B windows of
// T+1 bytes are spaced evenly from the start to the end of the val split and
// micro-batch k holds windows k*B .. k*B+B-1. Independent of any seed.
absl::StatusOr<MicroBatch> CutValMicroBatch(const std::vector<uint8_t>& val, int index, int num_batches,
                                            int batch, int context);

}  // namespace sy::trainer
