// The trainer's side of the step protocol (proto/expert.capnp StepRequest and
// StepReply): the commit every trainer sends to every host, the leader's norm
// gather and apply, and the read-only host status query (versions, actor
// checksums, step timeouts) used by tests and tools. Calls to all hosts go out
// concurrently.
// Thread-safe as far as RpcNode is (each call waits on its own state).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/transport/rpc.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/step_wire.h"
#include "services/trainer/host_peers.h"
#include "services/trainer/rpc_batch.h"

namespace sy::trainer {

struct GatherResult {
  std::map<std::pair<uint32_t, int>, double> squares;  // (param, expert) -> sum of squares
  std::vector<cluster::MicroBatchStatsValue> stats;             // every micro-batch of the step, by index
};

struct HostStatus {
  uint64_t version = 0;
  uint64_t step_timeouts = 0;
  std::vector<uint32_t> missing_micro_batches;
  std::vector<cluster::ActorStatusValue> actors;
};

class StepClient {
 public:
  // peers: where each host index is reached on `rpc` (it may grow). Both must outlive this.
  StepClient(transport::RpcNode* rpc, const HostPeers* peers, int num_micro_batches, std::string trainer_id,
             absl::Duration timeout);
  // A fixed set: hosts[i] is the peer name of host i on `rpc`.
  StepClient(transport::RpcNode* rpc, const std::vector<std::string>& hosts, int num_micro_batches,
             std::string trainer_id, absl::Duration timeout);

  absl::Status Commit(uint64_t step, const std::vector<cluster::MicroBatchStatsValue>& stats);
  // Waits until every host has all M micro-batches of `step`. A segment that
  // several replicas of an expert report is counted once; InternalError (naming
  // both hosts and the segment) when they report different sums of squares.
  absl::StatusOr<GatherResult> GatherNorms(uint64_t step);
  absl::Status Apply(uint64_t step, float clip_scale, float lr);
  absl::StatusOr<HostStatus> Status(int host);
  // From now on: requests carry guard->epoch() and get its stale-epoch resends and
  // rollback aborts, and commit/gather/apply of step s go only to the hosts
  // `in_use(s)` names (host indices; e.g. not a failed host whose actors moved).
  // Both must outlive this; null/empty: every host, epoch 0.
  void set_guard(CallGuard* guard, std::function<std::vector<int>(uint64_t step)> in_use);

 private:
  // Host indices the messages of `step` go to.
  std::vector<int> Targets(uint64_t step) const;
  // The epoch requests carry.
  uint64_t Epoch() const;

  transport::RpcNode* rpc_;
  std::unique_ptr<HostPeers> owned_peers_;  // the fixed set, when constructed with one
  const HostPeers* peers_;
  int m_;
  std::string trainer_id_;
  absl::Duration timeout_;
  CallGuard* guard_ = nullptr;
  std::function<std::vector<int>(uint64_t step)> in_use_;
};

}  // namespace sy::trainer
