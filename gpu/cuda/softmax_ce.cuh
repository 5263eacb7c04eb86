// Launchers for the LM head's softmax + cross-entropy (forward and backward) of
// the CUDA backend; semantics of gpu/backend.h. One warp per token row.
#pragma once

#include <cstdint>

#include "gpu/cuda/cuda_check.cuh"

namespace sy::gpu::cuda {

// probs (N, V) = softmax(logits (N, V)); losses (N) = logsumexp(logits[n]) - logits[n, targets[n]].
CudaResult LaunchSoftmaxCrossEntropyForward(float* losses, float* probs, const float* logits, const int32_t* targets,
                                            int N, int V, cudaStream_t stream);
// dlogits (N, V) = (probs - onehot(targets)) * dloss.
CudaResult LaunchSoftmaxCrossEntropyBackward(float* dlogits, const float* probs, const int32_t* targets, float dloss,
                                             int N, int V, cudaStream_t stream);

}  // namespace sy::gpu::cuda
