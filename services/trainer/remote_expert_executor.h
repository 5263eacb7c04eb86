// The distributed ExpertExecutor: sends every bucket of a Switch layer to the
// host that serves its expert for the call's micro-batch (Placement: replica
// m % n of a replicated expert, for forward and backward alike, so both reach
// the replica that keeps the micro-batch's state), all buckets concurrently, and
// waits for every reply; forward replies are the expert outputs, backward replies
// the input gradients (the weight-gradient contribution of (step, micro-batch)
// stays on the host). Activations travel as --wire_dtype (f32 or bf16). Errors name the
// host, layer, expert, step and micro-batch. Not thread-safe (one model drives it).
//
//   RemoteExpertExecutor executor(config, backend, &rpc, &placement, &peers, proto::DType::F32, timeout);
//   auto model = Model::Create(config, backend, seed, &executor).value();
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "common/transport/rpc.h"
#include "gpu/backend.h"
#include "gpu/model/config.h"
#include "gpu/model/expert.h"
#include "proto/envelope.capnp.h"
#include "services/cluster/placement.h"
#include "services/trainer/host_peers.h"
#include "services/trainer/rpc_batch.h"

namespace sy::trainer {

class RemoteExpertExecutor : public gpu::ExpertExecutor {
 public:
  // peers: where each host index is reached on `rpc` (it may grow). All pointers must outlive this.
  RemoteExpertExecutor(const gpu::ModelConfig& config, gpu::Backend* backend, transport::RpcNode* rpc,
                       const cluster::Placement* placement, const HostPeers* peers, proto::DType wire,
                       absl::Duration timeout);
  // A fixed set: hosts[i] is the peer name of host i on `rpc`.
  RemoteExpertExecutor(const gpu::ModelConfig& config, gpu::Backend* backend, transport::RpcNode* rpc,
                       const cluster::Placement* placement, const std::vector<std::string>& hosts, proto::DType wire,
                       absl::Duration timeout);

  // Version evaluation (non-training) forwards ask for (the steps applied so far).
  void set_eval_version(uint64_t version) { eval_version_ = version; }
  // Bytes sent since the last call (headers and tensor frames).
  uint64_t TakeBytesSent();
  // Stale-epoch resends and rollback aborts for every later call (null: none); must outlive this.
  void set_guard(CallGuard* guard) { guard_ = guard; }

  absl::Status Forward(const gpu::ExpertCall& call, absl::Span<const gpu::ExpertBucket> buckets) override;
  absl::Status Backward(const gpu::ExpertCall& call, absl::Span<const gpu::ExpertBucketGrad> buckets) override;

 private:
  // Appends the call of one bucket (its rows encoded from device memory straight into
  // its tensor frame) to the replica serving the call's micro-batch; returns its
  // envelope for the body. FinishBucketCall describes the frame and counts the bytes.
  absl::StatusOr<proto::Envelope::Builder> AddBucketCall(const gpu::ExpertCall& call, int expert, int rows,
                                                         const float* device_rows, proto::MessageKind kind,
                                                         const char* what, std::vector<OutgoingCall>* calls);
  void FinishBucketCall(proto::Envelope::Builder env, int rows, const char* tensor, proto::TensorRole role,
                        OutgoingCall& c);
  // Sends every call and decodes each reply's one tensor (rows x d_model) straight into its device pointer.
  absl::Status SendAndReceive(std::vector<OutgoingCall>& calls, const std::vector<std::pair<int, float*>>& into,
                              const char* tensor);

  gpu::ModelConfig config_;
  gpu::Backend* backend_;
  transport::RpcNode* rpc_;
  const cluster::Placement* placement_;
  std::unique_ptr<HostPeers> owned_peers_;  // the fixed set, when constructed with one
  const HostPeers* peers_;
  proto::DType wire_;  // of the buckets' activations and their gradients (--wire_dtype)
  absl::Duration timeout_;
  uint64_t eval_version_ = 0;
  uint64_t bytes_sent_ = 0;
  CallGuard* guard_ = nullptr;
};

}  // namespace sy::trainer
