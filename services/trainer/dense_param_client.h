// The trainer's side of the dense parameter shards: pushes dense gradients (already
// scaled by 1/M) to the shards' hosts, pulls the shards' values
// of a version into the model's parameter block, and pulls experts' weights (the
// leader does, to compute the parameter checksum of the whole model). Every shard
// or expert is one concurrent request. As the model's GradListener it pushes each
// group of dense gradients as soon as backward has finished them, so that the pushes
// travel while backward goes on. Micro-batches of the step's share that make up one
// node of the step's fixed tree (gpu/model/grad_tree.h) are summed here first, in a
// tree of that node's shape, and pushed once as that node: the same bits as the
// host's tree, in a fraction of the bytes (a trainer with 2^k micro-batches of its
// own pushes each dense gradient once a step instead of 2^k times).
// Not thread-safe (one trainer thread).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/transport/rpc.h"
#include "gpu/model/config.h"
#include "gpu/model/grad_tree.h"
#include "gpu/model/model.h"
#include "gpu/model/params.h"
#include "services/cluster/placement.h"
#include "services/cluster/step_wire.h"
#include "services/trainer/host_peers.h"
#include "services/trainer/rpc_batch.h"

namespace sy::trainer {

class DenseParamClient : public gpu::GradListener {
 public:
  // peers: where each host index is reached on `rpc` (it may grow). All pointers must outlive this.
  DenseParamClient(const gpu::ModelConfig& config, transport::RpcNode* rpc, const cluster::Placement* placement,
                   const HostPeers* peers, std::string trainer_id, absl::Duration timeout);
  // A fixed set: hosts[i] is the peer name of host i on `rpc`.
  DenseParamClient(const gpu::ModelConfig& config, transport::RpcNode* rpc, const cluster::Placement* placement,
                   const std::vector<std::string>& hosts, std::string trainer_id, absl::Duration timeout);

  // The step's share as nodes of the gradient tree (DenseNodesOf): sets which nodes
  // GradsReady pre-sums, and forgets any half-summed node.
  void BeginStep(std::vector<cluster::MicroBatchSpan> nodes);
  // Sends the slices of `grads` of the dense shards among `params` (the expert
  // parameters are not pushed: they live on their hosts) as micro-batch
  // ctx.micro_batch of ctx.step, or keeps them to be pushed with the rest of the
  // node of BeginStep's share that holds it, and returns without waiting (grads may
  // be overwritten at once: the values are copied); Flush waits for every push's
  // acknowledgement.
  absl::Status GradsReady(const gpu::StepContext& ctx, absl::Span<const uint32_t> params,
                          const gpu::ParamBlock& grads) override;
  absl::Status Flush();
  // Forgets the pushes in flight without waiting for them (a rollback replays
  // their step; a push to a lost host would hold Flush until its deadline).
  void Abandon() { pushes_.clear(); }
  // Waits until every shard reached `version`, then copies the values into params.
  absl::Status Pull(uint64_t version, gpu::ParamBlock* params);
  // Pull in two halves: StartPull sends every shard's request and returns at once (a
  // host answers a shard once it applied `version`, the request waiting there until
  // then, so it may go out before the step is even committed); FinishPull waits for
  // the replies of `pending` (from StartPull(version)) and copies the values.
  PendingCalls StartPull(uint64_t version);
  absl::Status FinishPull(uint64_t version, PendingCalls& pending, gpu::ParamBlock* params);
  // Copies every expert's weights at `version` into params.
  absl::Status PullExperts(uint64_t version, gpu::ParamBlock* params);
  // Bytes sent since the last call.
  uint64_t TakeBytesSent();
  // Stale-epoch resends and rollback aborts for every later call (null: none); must outlive this.
  void set_guard(CallGuard* guard) { guard_ = guard; }
  // --dense_wire_dtype=bf16: the shards that travel in bf16 (gpu::OnBf16DenseWire) are
  // pushed and pulled as bf16, and their pre-sums round every sum to bf16 as the host's
  // tree does. Set before the first push or pull.
  void set_bf16(bool bf16) { bf16_ = bf16; }

 private:
  // What shard `shard`'s gradients and values travel as.
  proto::DType DTypeOf(size_t shard) const;
  // Where `shard` lives under the placement at the time of the call (for stale-epoch resends).
  std::function<transport::Address()> ShardRoute(uint64_t step, size_t shard) const;
  // One shard's values to push, on `backend`'s device.
  struct ShardValues {
    size_t shard;
    const float* values;
  };
  absl::Status PushShards(uint64_t step, cluster::MicroBatchSpan micro_batches, gpu::Backend* backend,
                          const std::vector<ShardValues>& values);
  // Adds micro-batch m's slices of the shards to their trees of `node`; the shards
  // whose node is then complete come back, with their sums.
  absl::StatusOr<std::vector<ShardValues>> PreSum(cluster::MicroBatchSpan node, int m,
                                                  const std::vector<size_t>& shards, const gpu::ParamBlock& grads);

  gpu::ModelConfig config_;
  std::vector<gpu::ParamInfo> infos_;
  std::vector<uint32_t> shards_;  // shard -> parameter index
  std::vector<int> shard_of_param_;  // parameter index -> shard (-1: an expert parameter)
  transport::RpcNode* rpc_;
  const cluster::Placement* placement_;
  std::unique_ptr<HostPeers> owned_peers_;  // the fixed set, when constructed with one
  const HostPeers* peers_;
  std::string trainer_id_;
  absl::Duration timeout_;
  uint64_t bytes_sent_ = 0;
  CallGuard* guard_ = nullptr;
  bool bf16_ = false;
  std::vector<PendingCalls> pushes_;  // in flight until Flush
  std::vector<cluster::MicroBatchSpan> nodes_;  // the step's share as tree nodes
  std::vector<std::unique_ptr<gpu::GradTree>> sums_;  // per shard: the node being summed
};

}  // namespace sy::trainer
