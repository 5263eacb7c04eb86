// The CPU backend's loss and routing ops (see cpu_ops.h): the softmax cross-entropy
// over the vocabulary, the Switch router (softmax and top-1 pick, capacity assignment,
// the load-balancing and z losses and their backward) and the moves between tokens and
// expert buckets. Each row is owned by one thread; long sums run in double, in order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "gpu/cpu/cpu_ops.h"
#include "gpu/cpu/exact_exp.h"
#include "gpu/softmax_row.h"

namespace sy::gpu::cpu {
namespace {

double LogSumExp(const float* x, int n) {
  float mx = x[0];
  for (int j = 1; j < n; ++j) mx = std::max(mx, x[j]);
  double sum = 0;
  for (int j = 0; j < n; ++j) sum += std::exp(static_cast<double>(x[j]) - mx);
  return std::log(sum) + mx;
}

}  // namespace

void SoftmaxCrossEntropyForward(ThreadPool& pool, float* losses, float* probs, const float* logits,
                                const int32_t* targets, int N, int V) {
  pool.ParallelFor(N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* x = logits + n * V;
      float* p = probs + n * V;
      const SoftmaxRowTotals row = ExpShiftedRowVectorised(p, x, V);
      const float inv = static_cast<float>(1.0 / row.sum);
      for (int j = 0; j < V; ++j) p[j] *= inv;
      losses[n] = static_cast<float>(std::log(row.sum) + row.max - x[targets[n]]);
    }
  });
}

void SoftmaxCrossEntropyBackward(ThreadPool& pool, float* dlogits, const float* probs, const int32_t* targets,
                                 float dloss, int N, int V) {
  pool.ParallelFor(N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* p = probs + n * V;
      float* d = dlogits + n * V;
      for (int j = 0; j < V; ++j) d[j] = p[j] * dloss;
      d[targets[n]] = (p[targets[n]] - 1.0f) * dloss;
    }
  });
}

void RouterSoftmaxTop1(ThreadPool& pool, float* probs, int32_t* expert, float* gate, const float* logits, int N,
                       int E) {
  pool.ParallelFor(N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      float* p = probs + n * E;
      const int best = NormalizeRowTop1(p, E, ExpShiftedRowVectorised(p, logits + n * E, E).sum);
      expert[n] = best;
      gate[n] = p[best];
    }
  });
}

void RouterAssign(int32_t* row, int32_t* counts, int32_t* kept, const int32_t* expert, int N, int E, int capacity) {
  std::fill(counts, counts + E, 0);
  std::fill(kept, kept + E, 0);
  for (int n = 0; n < N; ++n) {  // slot within the expert's bucket, in token order
    const int e = expert[n];
    ++counts[e];
    row[n] = kept[e] < capacity ? kept[e]++ : -1;
  }
  std::vector<int32_t> start(E, 0);
  for (int e = 1; e < E; ++e) start[e] = start[e - 1] + kept[e - 1];
  for (int n = 0; n < N; ++n) {
    if (row[n] >= 0) row[n] += start[expert[n]];
  }
}

void RouterLosses(float* losses, const float* probs, const float* logits, const int32_t* counts, int N, int E,
                  float alpha, float beta) {
  std::vector<double> psum(E, 0.0);
  double zsum = 0;
  for (int n = 0; n < N; ++n) {
    const float* p = probs + static_cast<int64_t>(n) * E;
    for (int e = 0; e < E; ++e) psum[e] += p[e];
    const double lse = LogSumExp(logits + static_cast<int64_t>(n) * E, E);
    zsum += lse * lse;
  }
  double lb = 0;
  for (int e = 0; e < E; ++e) lb += (static_cast<double>(counts[e]) / N) * (psum[e] / N);
  losses[0] = static_cast<float>(alpha * E * lb);
  losses[1] = static_cast<float>(beta * zsum / N);
}

void RouterBackward(ThreadPool& pool, float* dlogits, const float* dgate, const float* probs, const float* logits,
                    const int32_t* expert, const int32_t* counts, int N, int E, float alpha, float beta,
                    float scale) {
  std::vector<float> lb_grad(E);  // d(lb)/d(probs[n, i]) * scale, the same for every n
  for (int e = 0; e < E; ++e) {
    lb_grad[e] = static_cast<float>(static_cast<double>(scale) * alpha * E * counts[e] / N / N);
  }
  pool.ParallelFor(N, 64, [&](int64_t n0, int64_t n1) {
    std::vector<float> g(E);
    for (int64_t n = n0; n < n1; ++n) {
      const float* p = probs + n * E;
      float* d = dlogits + n * E;
      double gp = 0;
      for (int e = 0; e < E; ++e) {
        g[e] = lb_grad[e] + (e == expert[n] ? dgate[n] : 0.0f);
        gp += static_cast<double>(g[e]) * p[e];
      }
      const float zc = static_cast<float>(static_cast<double>(scale) * beta * 2.0 *
                                          LogSumExp(logits + n * E, E) / N);
      for (int e = 0; e < E; ++e) d[e] = p[e] * (g[e] - static_cast<float>(gp)) + zc * p[e];
    }
  });
}

void DispatchForward(ThreadPool& pool, float* buckets, const float* inp, const int32_t* row, int N, int C) {
  pool.ParallelFor(N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      if (row[n] >= 0) std::memcpy(buckets + static_cast<int64_t>(row[n]) * C, inp + n * C, C * sizeof(float));
    }
  });
}

void DispatchBackward(ThreadPool& pool, float* dinp, const float* dbuckets, const int32_t* row, int N, int C) {
  pool.ParallelFor(N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      if (row[n] >= 0) {
        std::memcpy(dinp + n * C, dbuckets + static_cast<int64_t>(row[n]) * C, C * sizeof(float));
      } else {
        std::memset(dinp + n * C, 0, C * sizeof(float));
      }
    }
  });
}

void CombineForward(ThreadPool& pool, float* out, const float* buckets, const int32_t* row, const float* gate, int N,
                    int C) {
  pool.ParallelFor(N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      float* o = out + n * C;
      if (row[n] < 0) {
        std::memset(o, 0, C * sizeof(float));
        continue;
      }
      const float* x = buckets + static_cast<int64_t>(row[n]) * C;
      for (int c = 0; c < C; ++c) o[c] = gate[n] * x[c];
    }
  });
}

void CombineBackward(ThreadPool& pool, float* dbuckets, float* dgate, const float* dout, const float* buckets,
                     const int32_t* row, const float* gate, int N, int C) {
  pool.ParallelFor(N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      if (row[n] < 0) {
        dgate[n] = 0.0f;
        continue;
      }
      const float* d = dout + n * C;
      const float* x = buckets + static_cast<int64_t>(row[n]) * C;
      float* db = dbuckets + static_cast<int64_t>(row[n]) * C;
      double dot = 0;
      for (int c = 0; c < C; ++c) {
        dot += static_cast<double>(d[c]) * x[c];
        db[c] = gate[n] * d[c];
      }
      dgate[n] = static_cast<float>(dot);
    }
  });
}

}  // namespace sy::gpu::cpu
