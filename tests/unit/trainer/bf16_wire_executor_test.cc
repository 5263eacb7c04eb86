// Tests that the bf16 wire executor rounds exactly the tensors that cross the
// wire, keeps each layer's rounded input alive until that layer's backward, and
// refuses to run without an inner executor.
#include "services/trainer/bf16_wire_executor.h"

#include <map>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/tensor.h"
#include "gtest/gtest.h"

namespace sy::trainer {
namespace {

constexpr int kC = 4;

bool AllBf16(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (gpu::RoundToBf16(x[i]) != x[i]) return false;
  }
  return true;
}

// Computes out = in * 1.001 + 0.0001 (rarely a bf16 value) and remembers what it saw.
class RecordingExecutor : public gpu::ExpertExecutor {
 public:
  absl::Status Forward(const gpu::ExpertCall& call, absl::Span<const gpu::ExpertBucket> buckets) override {
    for (const gpu::ExpertBucket& b : buckets) {
      inputs_by_layer[call.layer].push_back(b.in);
      std::vector<float> seen(b.in, b.in + b.rows * kC);
      seen_inputs.push_back(seen);
      for (int i = 0; i < b.rows * kC; ++i) b.out[i] = b.in[i] * 1.001f + 0.0001f;
    }
    return absl::OkStatus();
  }
  absl::Status Backward(const gpu::ExpertCall& call, absl::Span<const gpu::ExpertBucketGrad> buckets) override {
    for (size_t k = 0; k < buckets.size(); ++k) {
      const gpu::ExpertBucketGrad& b = buckets[k];
      seen_douts.emplace_back(b.dout, b.dout + b.rows * kC);
      saved_input_at_backward.emplace_back(inputs_by_layer[call.layer][k],
                                           inputs_by_layer[call.layer][k] + b.rows * kC);
      for (int i = 0; i < b.rows * kC; ++i) b.din[i] = b.dout[i] * 0.999f - 0.0001f;
    }
    return absl::OkStatus();
  }
  std::map<int, std::vector<const float*>> inputs_by_layer;
  std::vector<std::vector<float>> seen_inputs, seen_douts, saved_input_at_backward;
};

std::vector<float> Values(int n, float base) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = base + 0.001234f * i;
  return v;
}

TEST(Bf16WireExecutorTest, RoundsWhatCrossesTheWire) {
  std::unique_ptr<gpu::Backend> cpu = gpu::CreateCpuBackend({1});
  Bf16WireExecutor wire(cpu.get(), kC);
  RecordingExecutor inner;
  wire.set_inner(&inner);
  std::vector<float> in0 = Values(3 * kC, 0.3f), in1 = Values(2 * kC, -0.7f), layer1_in = Values(3 * kC, 1.1f);
  const std::vector<float> original_in0 = in0;
  std::vector<float> out0(3 * kC), out1(2 * kC), layer1_out(3 * kC);
  const gpu::ExpertBucket layer0[] = {{0, 3, in0.data(), out0.data()}, {2, 2, in1.data(), out1.data()}};
  const gpu::ExpertBucket layer1[] = {{1, 3, layer1_in.data(), layer1_out.data()}};
  gpu::ExpertCall call;
  call.layer = 0;
  ASSERT_TRUE(wire.Forward(call, layer0).ok());
  call.layer = 1;
  ASSERT_TRUE(wire.Forward(call, layer1).ok());
  ASSERT_EQ(inner.seen_inputs.size(), 3u);
  for (const std::vector<float>& seen : inner.seen_inputs) EXPECT_TRUE(AllBf16(seen.data(), seen.size()));
  EXPECT_NE(inner.seen_inputs[0], original_in0);  // the values were not bf16 before
  EXPECT_EQ(in0, original_in0);                   // the model's own buffer is untouched
  EXPECT_TRUE(AllBf16(out0.data(), out0.size()));
  EXPECT_TRUE(AllBf16(out1.data(), out1.size()));
  EXPECT_TRUE(AllBf16(layer1_out.data(), layer1_out.size()));

  std::fill(in0.begin(), in0.end(), 0.0f);  // the model reuses its buffers before backward
  std::vector<float> dout0 = Values(3 * kC, 0.05f), dout1 = Values(2 * kC, -0.02f);
  std::vector<float> din0(3 * kC), din1(2 * kC);
  const gpu::ExpertBucketGrad grads0[] = {{0, 3, dout0.data(), din0.data()}, {2, 2, dout1.data(), din1.data()}};
  call.layer = 0;
  ASSERT_TRUE(wire.Backward(call, grads0).ok());
  ASSERT_EQ(inner.saved_input_at_backward.size(), 2u);
  EXPECT_EQ(inner.saved_input_at_backward[0], inner.seen_inputs[0]);  // layer 0's rounded input survived layer 1
  EXPECT_EQ(inner.saved_input_at_backward[1], inner.seen_inputs[1]);
  for (const std::vector<float>& seen : inner.seen_douts) EXPECT_TRUE(AllBf16(seen.data(), seen.size()));
  EXPECT_TRUE(AllBf16(din0.data(), din0.size()));
  EXPECT_TRUE(AllBf16(din1.data(), din1.size()));
}

TEST(Bf16WireExecutorTest, WithoutInnerExecutorIsFailedPrecondition) {
  std::unique_ptr<gpu::Backend> cpu = gpu::CreateCpuBackend({1});
  Bf16WireExecutor wire(cpu.get(), kC);
  std::vector<float> in(kC), out(kC);
  const gpu::ExpertBucket bucket[] = {{0, 1, in.data(), out.data()}};
  EXPECT_EQ(wire.Forward({}, bucket).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace sy::trainer
