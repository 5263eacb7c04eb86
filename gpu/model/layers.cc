// Linear forward/backward through the backend's sgemm (see layers.h).
#include "gpu/model/layers.h"

namespace sy::gpu {

void LinearForward(Backend* backend, float* out, const float* inp, const float* w, const float* bias,
                   int N, int IC, int OC) {
  backend->Sgemm(out, inp, w, N, OC, IC, false, false, 1.0f, 0.0f, IC, OC, OC);
  if (bias != nullptr) backend->AddBias(out, bias, N, OC);
}

void LinearBackward(Backend* backend, float* dinp, float* dw, float* dbias, const float* dout,
                    const float* inp, const float* w, int N, int IC, int OC, bool accumulate_dinp) {
  if (dinp != nullptr) {
    backend->Sgemm(dinp, dout, w, N, IC, OC, false, true, 1.0f, accumulate_dinp ? 1.0f : 0.0f, OC, OC, IC);
  }
  backend->Sgemm(dw, inp, dout, IC, OC, N, true, false, 1.0f, 1.0f, IC, OC, OC);
  if (dbias != nullptr) backend->BiasBackward(dbias, dout, N, OC);
}

}  // namespace sy::gpu
