// An expert host's links to other hosts: the connections (made when a placement table
// names a replica host or a live move's destination), the replica gradients sent over
// them (REPLICA_GRADIENTS: an actor's own per-micro-batch contributions of a step, see
// proto/expert.capnp ReplicaGradientsRequest) and the states of live moves
// (LIVE_STATE, in chunks). Replica gradients a peer refuses because its request
// budget is full (ResourceExhausted: its actors are busy with the step's burst of
// them) are sent again after a growing pause, until the timeout: they are what the
// peer's step waits for, so dropping them would stall it.
// Thread-safe: the placement actor connects while the actors send.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/actor/executor.h"
#include "common/transport/rpc.h"
#include "proto/envelope.capnp.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/step_wire.h"

namespace sy::expert_host {

class ReplicaLinks {
 public:
  // `self`: this host's node id (the sender of its gradients); `timeout`: how long a send
  // may take, refusals and resends included; `timers`: where resends wait (must outlive
  // the links' use; timers pending at its shutdown never run).
  ReplicaLinks(std::string self, absl::Duration timeout, actor::Executor* timers);

  // The node the host serves on, and sends over (null: none). Must outlive its use; set
  // it to null before closing it.
  void set_rpc(transport::RpcNode* rpc);
  // Reaches replica host `host` at `endpoint` from now on, connecting once (a failed
  // connection is logged: that host's gradients then never arrive, the step times out
  // and the coordinator recovers).
  void Connect(const std::string& host, const std::string& endpoint);
  // Sends `actor`'s own contributions of `step` (their micro-batches ascending, one
  // gradient of the actor's size each) to replica host `peer`, stamped with `epoch`, as
  // `dtype` values. Failures are logged (the peer's step then times out); a full-budget
  // refusal is resent.
  void Send(const cluster::ActorKey& actor, const std::string& peer, uint64_t step, uint64_t epoch,
            const std::vector<cluster::MicroBatchSpan>& micro_batches, const std::vector<std::vector<float>>& grads,
            proto::DType dtype = proto::DType::F32);
  // Streams `actor`'s state at `version` to host `peer` (connected before) in chunks of
  // at most `chunk_bytes`, in order; `done` gets OK once every chunk was acknowledged,
  // or the first failure.
  void SendState(const cluster::ActorKey& actor, const std::string& peer, uint64_t version,
                 std::shared_ptr<const std::string> state, uint64_t chunk_bytes, std::function<void(absl::Status)> done);

 private:
  struct Outgoing;
  // Sends `out` once; a full-budget refusal before its deadline schedules the next try.
  void Attempt(std::shared_ptr<Outgoing> out);
  // The transport peer name of `host` and the node to send on (null when either is unknown).
  std::pair<transport::RpcNode*, std::string> Route(const std::string& host);

  const std::string self_;
  const absl::Duration timeout_;
  actor::Executor* const timers_;
  absl::Mutex mu_;
  transport::RpcNode* rpc_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::set<std::string> connected_ ABSL_GUARDED_BY(mu_);        // transport peer names (host id @ endpoint)
  std::map<std::string, std::string> names_ ABSL_GUARDED_BY(mu_);  // host id -> transport peer name
};

}  // namespace sy::expert_host
