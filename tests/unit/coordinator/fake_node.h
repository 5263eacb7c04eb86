// Test doubles of an expert host and a trainer that speak the coordinator protocol
// over real ZeroMQ sockets, for the coordinator's service tests and syctl's
// integration tests (never part of the product). Both register with a model shape
// (kFakeModelShape unless a test gives another). The host answers placement updates,
// streams a deterministic fake state when asked for a checkpoint (chunks sent to the
// coordinator as CheckpointChunk calls, once a heartbeat reported the step asked
// for), installs restored state (chunkIn, checksum verified), records migration
// requests and fault specs. The trainer records rollbacks and stop orders.
// Thread-safe: handlers run on the RpcNode thread, accessors lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/transport/rpc.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/placement_table.h"
#include "services/coordinator/load_tracker.h"

namespace sy::coordinator::testing {

// The shape of the fake nodes' model unless a test gives another: 6 actors.
inline const cluster::ModelShape kFakeModelShape{1, 4, 2};

// The fake state of `actor` at `version`: `bytes` bytes (a multiple of 4).
std::string FakeState(const cluster::ActorKey& actor, uint64_t version, size_t bytes = 2600);

struct StreamOutSeen {
  cluster::ActorKey actor;
  std::string destination;
  uint64_t at_step = 0;
};

class FakeHost {
 public:
  // `shape`: of the model it registers with; `limits`: what its RPC node accepts (a
  // table of many actors outgrows the default header).
  static absl::StatusOr<std::unique_ptr<FakeHost>> Start(const std::string& id, const std::string& coordinator,
                                                          uint64_t incarnation = 1,
                                                          const cluster::ModelShape& shape = kFakeModelShape,
                                                          const transport::EnvelopeLimits& limits = {});
  ~FakeHost();

  // Registers, listing `held` as the actors it already holds.
  absl::Status Register(const std::vector<cluster::ActorKey>& held = {});
  // Heartbeat at `step` (the host's actors reach version `step`: checkpoint streams
  // asked for up to it go out); returns whether the coordinator asked to register again.
  absl::StatusOr<bool> Heartbeat(uint64_t step);
  // Any request to the coordinator (for tests of bad input).
  absl::StatusOr<transport::DecodedMessage> Call(capnp::MallocMessageBuilder& header, std::vector<transport::Frame> data = {});

  const std::string& id() const { return id_; }
  const std::string& endpoint() const { return endpoint_; }
  uint64_t table_epoch() const;
  // Actors the last pushed table places on this host.
  std::vector<cluster::ActorKey> actors() const;
  // The live moves of the last table pushed (empty: it applied at once).
  std::vector<cluster::LiveMove> live_moves() const;
  std::map<cluster::ActorKey, std::string> installed() const;
  std::vector<StreamOutSeen> stream_outs() const;
  std::vector<std::string> fault_specs() const;
  int checkpoint_chunks_sent() const;

 private:
  FakeHost() = default;
  void Handle(transport::DecodedMessage request, transport::Responder responder);
  // Sends FakeState(actor, at_step) as checkpoint chunks; `ack` answers the stream request.
  void StreamCheckpoint(const cluster::ActorKey& actor, uint64_t checkpoint_id, uint64_t at_step, uint64_t chunk_size,
                        transport::Responder responder, std::function<void(transport::Responder, uint32_t)> ack);

  std::string id_;
  std::string endpoint_;
  uint64_t incarnation_ = 1;
  cluster::ModelShape shape_;
  std::unique_ptr<transport::RpcNode> rpc_;
  mutable absl::Mutex mu_;
  uint64_t table_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<cluster::ActorKey> actors_ ABSL_GUARDED_BY(mu_);
  std::vector<cluster::LiveMove> live_moves_ ABSL_GUARDED_BY(mu_);
  std::map<cluster::ActorKey, std::string> receiving_ ABSL_GUARDED_BY(mu_);
  std::map<cluster::ActorKey, std::string> installed_ ABSL_GUARDED_BY(mu_);
  std::vector<StreamOutSeen> stream_outs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> fault_specs_ ABSL_GUARDED_BY(mu_);
  int chunks_sent_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reached_step_ ABSL_GUARDED_BY(mu_) = 0;
  // Checkpoint streams asked for a step the host has not reached yet, as a real host parks them.
  std::vector<std::pair<uint64_t, std::function<void()>>> parked_streams_ ABSL_GUARDED_BY(mu_);
};

struct RollbackSeen {
  uint64_t step = 0;
  uint64_t checkpoint_id = 0;
  uint64_t epoch = 0;
};

class FakeTrainer {
 public:
  static absl::StatusOr<std::unique_ptr<FakeTrainer>> Start(const std::string& id, const std::string& coordinator,
                                                             const cluster::ModelShape& shape = kFakeModelShape);
  ~FakeTrainer();
  absl::Status Register();
  // finished: the last heartbeat of a trainer that is done (it leaves).
  absl::StatusOr<bool> Heartbeat(uint64_t step, bool finished = false);
  absl::Status ReportLoad(uint64_t step, const std::vector<ExpertTokens>& loads);
  // Epoch of the table a placement query got back (0: the reply held no table).
  absl::StatusOr<uint64_t> PlacementTableEpoch();
  // While held, rollback orders are recorded but answered only at ReleaseRollbackReplies
  // (a trainer still busy aborting its step).
  void HoldRollbackReplies();
  void ReleaseRollbackReplies();
  std::vector<RollbackSeen> rollbacks() const;
  // The reasons of the stop orders received.
  std::vector<std::string> stops() const;

 private:
  FakeTrainer() = default;
  std::string id_;
  cluster::ModelShape shape_;
  std::unique_ptr<transport::RpcNode> rpc_;
  mutable absl::Mutex mu_;
  std::vector<RollbackSeen> rollbacks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> stops_ ABSL_GUARDED_BY(mu_);
  bool hold_replies_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<transport::Responder, uint64_t>> held_replies_ ABSL_GUARDED_BY(mu_);  // with the step
};

// Polls `condition` until true; false after 20 s (a hang guard, never a timing assertion).
bool WaitFor(const std::function<bool()>& condition);

// Heartbeats the given nodes every 30 ms from a background thread at step `step`,
// re-registering a node the coordinator asks to (with the actors its table gave it).
class Heartbeater {
 public:
  Heartbeater(std::vector<FakeHost*> hosts, std::vector<FakeTrainer*> trainers);
  ~Heartbeater();
  std::atomic<uint64_t> step{0};

 private:
  std::vector<FakeHost*> hosts_;
  std::vector<FakeTrainer*> trainers_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace sy::coordinator::testing
