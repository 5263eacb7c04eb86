// The matrix products of causal self-attention, scheduled the same way on every
// backend: q, k and v are read in place from inp (B, T, 3C) with leading dimension
// 3C, and each sequence is one strided batch over its NH heads; att is (B, NH, T, T).
// Only the causal row softmax between the products is a backend's own, so both
// backends call these around theirs and cannot drift apart.
#pragma once

#include <cmath>
#include <cstdint>

#include "gpu/backend.h"

namespace sy::gpu {

struct AttentionShape {
  int B = 0, T = 0, C = 0, NH = 0;

  int head_size() const { return C / NH; }
  // Multiplies q · k^T before the softmax.
  float scale() const { return 1.0f / std::sqrt(static_cast<float>(head_size())); }
};

// att (NH, T, T) per sequence = scale * q · k^T, before the softmax.
void AttentionScores(Backend& backend, float* att, const float* inp, const AttentionShape& s);
// out (T, C) per sequence = att · v, head h written at columns h * head_size.
void AttentionValues(Backend& backend, float* out, const float* att, const float* inp, const AttentionShape& s);
// The products' backward through att · v: datt = dy · v^T, and dv = att^T · dy into
// the v columns of dinp (B, T, 3C).
void AttentionValuesBackward(Backend& backend, float* dinp, float* datt, const float* dout, const float* inp,
                             const float* att, const AttentionShape& s);
// The backward through the scores, from datt already through the softmax (scaled):
// dq = datt · k and dk = datt^T · q into the q and k columns of dinp.
void AttentionScoresBackward(Backend& backend, float* dinp, const float* datt, const float* inp,
                             const AttentionShape& s);

}  // namespace sy::gpu
