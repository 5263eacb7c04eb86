// Cutting training and validation micro-batches (see batches.h).
#include "services/trainer/batches.h"

#include "absl/strings/str_cat.h"
#include "common/base/philox.h"

namespace sy::trainer {
namespace {

absl::Status CheckShape(size_t split_bytes, int batch, int context) {
  if (batch <= 0 || context <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("micro-batch shape must be positive, got batch ", batch, " context ", context));
  }
  if (split_bytes < static_cast<size_t>(context) + 1) {
    return absl::InvalidArgumentError(absl::StrCat("split of ", split_bytes,
                                                   " bytes is shorter than one window of context + 1 = ",
                                                   context + 1, " bytes"));
  }
  return absl::OkStatus();
}

// Copies the window of T+1 bytes at `start` into sequence b of `mb`.
void FillSequence(const std::vector<uint8_t>& bytes, uint64_t start, int b, MicroBatch& mb) {
  const int T = mb.context;
  for (int t = 0; t < T; ++t) {
    mb.inputs[static_cast<size_t>(b) * T + t] = bytes[start + t];
    mb.targets[static_cast<size_t>(b) * T + t] = bytes[start + t + 1];
  }
}

MicroBatch EmptyBatch(int batch, int context) {
  MicroBatch mb;
  mb.batch = batch;
  mb.context = context;
  mb.inputs.resize(static_cast<size_t>(batch) * context);
  mb.targets.resize(static_cast<size_t>(batch) * context);
  return mb;
}

}  // namespace

absl::StatusOr<MicroBatch> CutTrainMicroBatch(const std::vector<uint8_t>& train, uint64_t seed,
                                              int64_t step, int64_t micro_batch, int batch, int context) {
  if (absl::Status s = CheckShape(train.size(), batch, context); !s.ok()) return s;
  if (step < 0 || micro_batch < 0 || step > UINT32_MAX || micro_batch > UINT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("step ", step, " / micro-batch ", micro_batch, " out of range [0, 2^32)"));
  }
  const CounterRng rng(seed, RngStream::kData, static_cast<uint32_t>(step), static_cast<uint32_t>(micro_batch));
  const uint64_t num_starts = train.size() - static_cast<uint64_t>(context);  // starts 0..size-T-1
  MicroBatch mb = EmptyBatch(batch, context);
  for (int b = 0; b < batch; ++b) FillSequence(train, rng.Below(static_cast<uint64_t>(b), num_starts), b, mb);
  return mb;
}

absl::StatusOr<MicroBatch> CutValMicroBatch(const std::vector<uint8_t>& val, int index, int num_batches,
                                            int batch, int context) {
  if (absl::Status s = CheckShape(val.size(), batch, context); !s.ok()) return s;
  if (num_batches <= 0 || index < 0 || index >= num_batches) {
    return absl::InvalidArgumentError(
        absl::StrCat("validation batch index ", index, " out of range [0, ", num_batches, ")"));
  }
  const uint64_t windows = static_cast<uint64_t>(num_batches) * batch;
  const uint64_t last_start = val.size() - static_cast<uint64_t>(context) - 1;
  MicroBatch mb = EmptyBatch(batch, context);
  for (int b = 0; b < batch; ++b) {
    const uint64_t w = static_cast<uint64_t>(index) * batch + b;
    const uint64_t start = windows == 1 ? 0 : w * last_start / (windows - 1);
    FillSequence(val, start, b, mb);
  }
  return mb;
}

}  // namespace sy::trainer
