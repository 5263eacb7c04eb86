// The expert unit (see expert.h): two linear layers around a GELU, with expert
// dropout keyed by (seed, step, micro-batch, layer, expert, row, unit).
#include "gpu/model/expert.h"

#include "gpu/model/layers.h"

namespace sy::gpu {

RngKey ExpertDropoutKey(const ExpertDropout& d) {
  RngKey key;
  key.seed = d.seed;
  key.stream = RngStream::kExpertDropout;
  key.a = static_cast<uint32_t>(d.step);
  key.b = static_cast<uint32_t>((static_cast<uint64_t>(d.micro_batch) << 12) | static_cast<uint32_t>(d.layer));
  key.offset = static_cast<uint64_t>(d.expert) << 40;
  return key;
}

void ExpertForward(Backend* backend, float* out, const ExpertActivations& saved, const float* in, int n, int C,
                   int F, const ExpertWeights& w, const ExpertDropout& dropout) {
  if (n <= 0) return;
  const int64_t nf = static_cast<int64_t>(n) * F;
  LinearForward(backend, saved.pre, in, w.w_in, w.b_in, n, C, F);
  backend->GeluForward(saved.act, saved.pre, nf);
  if (dropout.rate > 0.0f) backend->DropoutForward(saved.act, saved.act, nf, dropout.rate, ExpertDropoutKey(dropout));
  LinearForward(backend, out, saved.act, w.w_out, w.b_out, n, F, C);
}

void ExpertBackward(Backend* backend, float* din, const ExpertGrads& grads, float* scratch, const float* dout,
                    const float* in, const ExpertActivations& saved, int n, int C, int F, const ExpertWeights& w,
                    const ExpertDropout& dropout) {
  if (n <= 0) return;
  const int64_t nf = static_cast<int64_t>(n) * F;
  LinearBackward(backend, scratch, grads.w_out, grads.b_out, dout, saved.act, w.w_out, n, F, C);
  if (dropout.rate > 0.0f) {
    backend->DropoutBackward(scratch, scratch, nf, dropout.rate, ExpertDropoutKey(dropout));
  }
  backend->GeluBackward(scratch, saved.pre, scratch, nf);
  LinearBackward(backend, din, grads.w_in, grads.b_in, scratch, in, w.w_in, n, C, F);
}

}  // namespace sy::gpu
