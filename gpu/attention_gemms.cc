// The attention products both backends share (see attention_gemms.h).
#include "gpu/attention_gemms.h"

namespace sy::gpu {

void AttentionScores(Backend& backend, float* att, const float* inp, const AttentionShape& s) {
  const int T = s.T, C = s.C, hs = s.head_size();
  const int64_t C3 = 3 * static_cast<int64_t>(C), TT = static_cast<int64_t>(T) * T;
  for (int b = 0; b < s.B; ++b) {
    const float* q = inp + b * T * C3;
    backend.SgemmStridedBatched(att + b * s.NH * TT, q, q + C, T, T, hs, false, true, s.scale(), 0.0f, 3 * C, 3 * C,
                                T, hs, hs, TT, s.NH);
  }
}

void AttentionValues(Backend& backend, float* out, const float* att, const float* inp, const AttentionShape& s) {
  const int T = s.T, C = s.C, hs = s.head_size();
  const int64_t C3 = 3 * static_cast<int64_t>(C), TT = static_cast<int64_t>(T) * T;
  for (int b = 0; b < s.B; ++b) {
    const float* v = inp + b * T * C3 + 2 * C;
    backend.SgemmStridedBatched(out + static_cast<int64_t>(b) * T * C, att + b * s.NH * TT, v, T, hs, T, false, false,
                                1.0f, 0.0f, T, 3 * C, C, TT, hs, hs, s.NH);
  }
}

void AttentionValuesBackward(Backend& backend, float* dinp, float* datt, const float* dout, const float* inp,
                             const float* att, const AttentionShape& s) {
  const int T = s.T, C = s.C, hs = s.head_size();
  const int64_t C3 = 3 * static_cast<int64_t>(C), TT = static_cast<int64_t>(T) * T;
  for (int b = 0; b < s.B; ++b) {
    const float* q = inp + b * T * C3;
    const float* dy = dout + static_cast<int64_t>(b) * T * C;
    float* dq = dinp + b * T * C3;
    backend.SgemmStridedBatched(datt + b * s.NH * TT, dy, q + 2 * C, T, T, hs, false, true, 1.0f, 0.0f, C, 3 * C, T,
                                hs, hs, TT, s.NH);
    backend.SgemmStridedBatched(dq + 2 * C, att + b * s.NH * TT, dy, T, hs, T, true, false, 1.0f, 0.0f, T, C, 3 * C,
                                TT, hs, hs, s.NH);
  }
}

void AttentionScoresBackward(Backend& backend, float* dinp, const float* datt, const float* inp,
                             const AttentionShape& s) {
  const int T = s.T, C = s.C, hs = s.head_size();
  const int64_t C3 = 3 * static_cast<int64_t>(C), TT = static_cast<int64_t>(T) * T;
  for (int b = 0; b < s.B; ++b) {
    const float* q = inp + b * T * C3;
    const float* da = datt + b * s.NH * TT;
    float* dq = dinp + b * T * C3;
    backend.SgemmStridedBatched(dq, da, q + C, T, hs, T, false, false, 1.0f, 0.0f, T, 3 * C, 3 * C, TT, hs, hs, s.NH);
    backend.SgemmStridedBatched(dq + C, da, q, T, hs, T, true, false, 1.0f, 0.0f, T, 3 * C, 3 * C, TT, hs, hs, s.NH);
  }
}

}  // namespace sy::gpu
