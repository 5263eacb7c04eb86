// Linear layers as forward/backward pairs on the backend (y = x·W + b, W of shape
// (in, out)), shared by the model and the expert unit. Plain functions.
#pragma once

#include "gpu/backend.h"

namespace sy::gpu {

// out (N, OC) = inp (N, IC) · w (IC, OC) + bias (OC); bias may be null.
void LinearForward(Backend* backend, float* out, const float* inp, const float* w, const float* bias,
                   int N, int IC, int OC);
// dinp (N, IC) = dout (N, OC) · w^T (overwrite, or += when accumulate_dinp; null skips);
// dw (IC, OC) += inp^T · dout; dbias (OC) += column sums of dout (null skips).
void LinearBackward(Backend* backend, float* dinp, float* dw, float* dbias, const float* dout,
                    const float* inp, const float* w, int N, int IC, int OC, bool accumulate_dinp = false);

}  // namespace sy::gpu
