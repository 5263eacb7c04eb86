// ClusterActor: the coordinator's view of the cluster. It owns membership (register,
// heartbeats, failure detection on a timer), the model's shape (learned from the nodes
// that register, see LearnedShape), the placement table (initial round-robin once the
// shape is known and the expected hosts registered, re-placement on failure, join and drain, planned
// rebalances; saved in RocksDB on every change and pushed to the hosts) and the
// per-expert load. From those it drives the control flows, each in its own file:
//   cluster_nodes.cc     register, heartbeat, failure detection, placement and load reports;
//   cluster_recovery.cc  recovery and restores: restore every actor from the latest usable
//                        (or the asked-for) checkpoint onto the current placement;
//   cluster_failover.cc  with --redundancy: a dead host whose actors all live on elsewhere
//                        fails over (the survivors drop the open step, no restore) and the
//                        lost copies are rebuilt live;
//   trainer_orders.cc    the trainers' rollback to the restored step (or stop);
//   cluster_moves.cc     joins, drains, rebalances; automatic rebalancing when the moving
//                        host load is over the threshold (live: on load reports; else at
//                        committed checkpoints);
//   cluster_live_moves.cc  moves made live at a step boundary (the old host streams the
//                        state to the new one, nothing is restored or replayed), with
//                        checkpoint recovery as the fallback;
//   cluster_admin.cc     the admin API: reports rendered from snapshots, and commands.
// Checkpoints themselves belong to the CheckpointActor: this actor tells it the
// cluster's progress (ClusterProgress, after every turn that changed it) and keeps the
// CheckpointSnapshot that comes with each CheckpointEvent.
// It refuses a registration that would grow it beyond its bounds (see AdmitRegistration).
// It answers register, heartbeat, placement, load reports and the admin API
// (everything but `checkpoint list`, which the CheckpointActor answers).
//
// With a Registry it exports sy_coordinator_epoch, sy_coordinator_hosts_alive,
// sy_coordinator_recoveries_total and sy_coordinator_moves_total{kind=migrate|replicate}.
//
// Failure detection: heartbeats (OnTick, Membership's timeout) for every node (a tick
// that comes more than half the timeout late means the coordinator itself was stopped:
// no node is failed for that silence), and for
// hosts a fast path: a host whose connection dropped (HostConnectionLost, from the
// transport's socket monitor) is probed with a ping; unanswered within
// options.probe_deadline, it is declared dead at once (FailureDetector).
//
// Its whole interface is ClusterMsg. Thread-safe like every actor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "absl/time/time.h"
#include "common/actor/actor.h"
#include "common/actor/request_budget.h"
#include "common/transport/rpc.h"
#include "services/cluster/placement_table.h"
#include "services/coordinator/checkpoint_actor.h"
#include "services/coordinator/checkpoint_store.h"
#include "services/coordinator/cluster_snapshot.h"
#include "services/coordinator/coordinator_options.h"
#include "services/coordinator/failure_detector.h"
#include "services/coordinator/host_load_series.h"
#include "services/coordinator/learned_shape.h"
#include "services/coordinator/load_tracker.h"
#include "services/coordinator/membership.h"
#include "services/coordinator/rebalance_planner.h"
#include "services/coordinator/switchable_fault_transport.h"

namespace sy::coordinator {

// A request from the wire (register, heartbeat, placement, loadReport, admin).
struct ClusterRequest {
  transport::DecodedMessage message;
  transport::Responder responder;
  actor::RequestBudget::Ticket admission;  // the door's share of its request budget (optional)
};
// Failure detection round (self-scheduled).
struct ClusterTick {};
// A trainer answered (or could not be sent) its rollback order.
struct RollbackAcked {
  std::string trainer;
  uint64_t generation = 0;  // of the restore whose rollback it answers
};

// The coordinator's connection to a transport peer dropped (the socket monitor saw it).
struct HostConnectionLost {
  std::string peer;  // the transport peer (HostPeer) whose connection dropped
};
// The liveness probe of a suspected host ended.
struct HostProbed {
  std::string host;
  uint64_t incarnation = 0;
  bool answered = false;
};

// A surviving host answered a failover's table: the version it is at after dropping
// its open step, or why not.
struct FailoverAnswer {
  std::string host;
  uint64_t generation = 0;  // of the failover (restore generation) it answers
  absl::StatusOr<uint64_t> version;
};

using ClusterMsg = std::variant<ClusterRequest, ClusterTick, CheckpointEvent, RollbackAcked, HostConnectionLost,
                                HostProbed, FailoverAnswer>;

class ClusterActor : public actor::Actor<ClusterMsg> {
 public:
  // Everything passed must outlive the actor.
  ClusterActor(actor::Executor& executor, const CoordinatorOptions& options, transport::RpcNode* rpc,
               SwitchableFaultTransport* own_transport, CheckpointStore* store,
               std::shared_ptr<CheckpointActor> checkpoints, metrics::Registry* registry = nullptr);

  // Loads the saved placement, takes `checkpoints` (CheckpointActor::Start) as the
  // checkpoints' state, then starts the failure detection timer. Call once, before
  // requests arrive.
  absl::Status Start(const CheckpointSnapshot& checkpoints);

 private:
  void Handle(ClusterMsg& msg);
  // After every turn (message, timer, awaited reply): gauges, and the progress the
  // CheckpointActor sees when it changed.
  void EndTurn();
  void PublishProgress();
  void OnRequest(ClusterRequest& request);
  // OK when a registration may be handled: a node it does not know fits under
  // options_.max_nodes, and what it would store (endpoint, device) is within
  // kMaxEndpointBytes, kMaxDeviceBytes. The refusal otherwise, counted.
  absl::Status AdmitRegistration(const transport::DecodedMessage& message) const;
  void OnAdmin(ClusterRequest& request);  // cluster_admin.cc

  // ---- nodes (cluster_nodes.cc)
  void OnRegister(ClusterRequest& request);
  void OnHeartbeat(ClusterRequest& request);
  void OnPlacement(ClusterRequest& request);
  void OnLoadReport(ClusterRequest& request);
  void OnTick();
  // Nodes dead longer than options_.forget_dead_after leave the membership, unless the
  // table lists them (hosts whose actors had nowhere to go); logged.
  void ForgetLongDeadNodes();
  // Fast failure detection: a dropped connection is probed, an unanswered probe kills.
  void OnConnectionLost(const HostConnectionLost& lost);
  void OnHostProbed(const HostProbed& probed);
  // A host declared dead: unless the table still lists actors on it (the last host, whose
  // actors had nowhere to go), its connection is closed and its endpoint forgotten, so
  // ZeroMQ stops reconnecting to it forever; it connects anew if it registers again.
  void CloseDeadHostConnection(const std::string& host);
  // The model's shape is known from `source` from now on: the table is for it.
  void AdoptShape(const cluster::ModelShape& shape, const std::string& source);
  // Places every actor once the model's shape is known and the expected hosts registered.
  void MaybeInitializePlacement();
  // How a table push reaches a host: a change, the cluster's first placement (actors
  // start at their initial state) or a failover (the host drops its open step).
  enum class TablePush { kChange, kInitial, kFailover };
  // Placement changes: save, publish to the live hosts.
  void PlacementChanged(TablePush kind = TablePush::kChange);
  void SaveTable();
  // Sends the table to `host`; `done` gets the reply.
  void PushTable(const std::string& host, TablePush kind,
                 std::function<void(absl::StatusOr<transport::DecodedMessage>)> done);

  // ---- recovery and restores (cluster_recovery.cc)
  void OnHostFailed(const std::string& host, const std::string& why);
  // A trainer that stopped heartbeating without saying it finished: roll the survivors back.
  void OnTrainerFailed(const std::string& trainer);
  void Recover(const std::string& why);
  // Restores the checkpoint `query` answers onto the current placement (new epoch),
  // holding the trainers until their rollback; `unusable` runs when there is none.
  void Restore(actor::AskFuture<CheckpointInfo> query, std::function<void(const absl::Status&)> unusable);
  // A restore begins: the live trainers get no new table until they answered its rollback.
  void HoldTrainersUntilRollback();
  // A checkpoint being taken while state is rolled back would mix versions: it is void.
  void AbandonCheckpoint(const std::string& why);
  void OnCheckpointEvent(const CheckpointEvent& event);
  void OnRestored(const CheckpointEvent& event);
  void OnRestoreFailed(const CheckpointEvent& event);
  // The database refused a write: the status reads "degraded: <what>: <status>" until a
  // later checkpoint commits.
  void StorageFailed(const std::string& what, const absl::Status& status);

  // ---- failover with redundancy (cluster_failover.cc)
  // Whether the failure of a host whose removal made `moves` (`moving`: it was in a live
  // move) can fail over: redundancy >= 2, nothing else under way, and every actor it held
  // has another holder.
  bool CanFailOver(const std::vector<cluster::Move>& moves, bool moving) const;
  // The survivors drop their open step (the table without the dead host goes out) and
  // the trainers redo it; falls back to Recover(why) when they disagree or fail.
  void FailOver(const std::string& why);
  void OnFailoverAnswer(const FailoverAnswer& answer);
  // Live replicates onto the least loaded live hosts until every actor has
  // options_.redundancy holders (or every live host holds it).
  void RebuildRedundancy();

  // ---- trainer orders (trainer_orders.cc)
  void RollbackTrainers(uint64_t step, uint64_t checkpoint_id);
  // The run cannot go on (a recovery found nothing to restore): every live trainer is
  // told to stop with `reason`, instead of waiting for a rollback that cannot come.
  void StopTrainers(const std::string& reason);

  // ---- moves (cluster_moves.cc)
  // OK when actors may move now: a committed checkpoint exists and no recovery runs.
  absl::Status CanMoveActors() const;
  // Publishes the table holding `moves` and restores every actor from the latest
  // checkpoint (see CanMoveActors); `why` is logged.
  void StartMigrations(const std::vector<cluster::Move>& moves, const std::string& why);
  // ---- live moves (cluster_live_moves.cc)
  // OK when `moves` (in the table now) can happen live: migrations and new replicas
  // between live hosts, with live moves on.
  absl::Status CanMoveLive(const std::vector<cluster::Move>& moves) const;
  // Marks `moves` live after a step ahead of the cluster's progress and publishes the table.
  void StartLiveMoves(const std::vector<cluster::Move>& moves, const std::string& why);
  // With the cluster's progress (a host's heartbeat, a trainer's load report): the live
  // moves are done once a host applied the step after their boundary.
  void OnProgressForLiveMoves();
  // On the timer: a live move that saw no progress for options_.live_move_timeout
  // falls back to checkpoint recovery.
  void CheckLiveMoveProgress();
  // The epoch heartbeat replies tell the nodes: during live moves the one before them.
  // The hosts get the moves' table pushed; a host that learnt the new epoch from a
  // heartbeat before the push arrived would refuse the old epoch's requests of the steps
  // up to the boundary, and the trainers would route them to the new hosts too early.
  uint64_t HeartbeatEpoch() const;

  // Moves actors to the hosts_waiting_to_join_ still alive and outside the table.
  void AdmitWaitingHosts();
  // With --auto_rebalance, when the moving host load max/mean is over the threshold
  // and no automatic rebalance happened in the last rebalance_every_steps steps,
  // applies the planned moves (migrations and replicas): live, at a trainer's load
  // report of `step` (no checkpoint_id); with live moves off, through checkpoint
  // `checkpoint_id` at `step` as it commits.
  void MaybeAutoRebalance(std::optional<uint64_t> checkpoint_id, uint64_t step);
  // Planner settings: `threshold`, and options_.max_replicas.
  RebalanceOptions Planner(double threshold) const;
  void CountMoves(const std::vector<cluster::Move>& moves);

  // ---- admin API (cluster_admin.cc): reports rendered from snapshots (admin_replies.h)
  // and the commands that act on the cluster
  StatusSnapshot StatusNow() const;
  std::vector<NodeSnapshot> NodesNow() const;
  std::vector<ExpertSnapshot> ExpertsNow() const;
  void AdminCheckpointNow(transport::Responder& responder);
  void AdminRestore(uint64_t id, transport::Responder responder);
  void AdminRebalance(bool dry_run, double threshold, transport::Responder& responder);
  void AdminDrain(const std::string& host, transport::Responder& responder);
  void AdminRemoveHost(const std::string& host, transport::Responder& responder);
  void AdminFaults(const std::string& node, const std::string& spec, transport::Responder responder);

  // One connection per (host, endpoint): a host that comes back on another port (a
  // restart, a fresh cluster on a restored database) gets a new one, not the stale socket.
  static std::string HostPeer(const std::string& host, const std::string& endpoint);
  static int64_t NowUnixMs();
  transport::Address AddressOf(const std::string& node) const;
  std::vector<std::string> AliveHosts() const;
  // The placement's entries with each host as the transport peer to call (restores).
  std::map<cluster::ActorKey, std::vector<std::string>> RestoreTargets() const;

  struct Metrics {
    metrics::Gauge* epoch = nullptr;
    metrics::Gauge* hosts_alive = nullptr;
    metrics::Counter* recoveries = nullptr;
    metrics::Counter* migrations = nullptr;
    metrics::Counter* replications = nullptr;
  };
  void UpdateGauges();

  CoordinatorOptions options_;
  metrics::Registry* registry_;  // optional: refusals
  Metrics metrics_;
  transport::RpcNode* rpc_;
  SwitchableFaultTransport* own_transport_;
  CheckpointStore* store_;  // the saved placement
  std::shared_ptr<CheckpointActor> checkpoints_;

  Membership membership_;
  FailureDetector detector_;
  LearnedShape model_;            // the shape of the model, from the nodes or the saved placement
  cluster::PlacementTable table_;  // for model_'s shape
  LoadTracker loads_;
  HostLoadSeries host_load_series_;
  std::map<std::string, std::string> endpoints_;  // host -> endpoint
  // trainer -> the routing id its last registration or heartbeat came from: trainers do not
  // listen, so the coordinator calls them back on their own connection (a fresh one has a
  // fresh routing id).
  std::map<std::string, std::string> trainer_routes_;
  std::string phase_ = "waiting for hosts";
  std::string storage_problem_;  // the last refused write, shown as the phase until a commit succeeds
  uint64_t step_ = 0;  // highest step (actor version) a live host reported
  CheckpointSnapshot checkpoint_;  // as of the latest CheckpointEvent
  uint64_t outcome_seen_ = 0;      // newest checkpoint whose outcome was acted on
  bool checkpoint_due_ = false;    // this turn: the next automatic checkpoint may begin
  std::string abandon_reason_;     // this turn: the checkpoint being taken is void
  ClusterProgress last_progress_;  // as last told to the CheckpointActor (one-shot fields cleared)
  uint32_t recoveries_ = 0;
  uint32_t migrations_ = 0;
  uint32_t replications_ = 0;
  std::optional<transport::Responder> pending_restore_;  // admin restore waiting for the hosts
  bool recovering_ = false;
  // When the failure the recovery under way answers was detected (Unix ms; 0: none):
  // told to the trainers with their rollback, for summary.json's recovery_seconds.
  int64_t failure_detected_unix_ms_ = 0;
  std::optional<uint64_t> last_auto_rebalance_step_;
  // The live moves under way: their last step on the old hosts, and when the cluster
  // last made progress (the fallback's clock).
  struct LiveMovesInFlight {
    uint64_t last_source_step = 0;
    size_t count = 0;
    uint64_t progress_step = 0;
    absl::Time progress_at;
    uint64_t previous_epoch = 0;  // the table's before the moves
  };
  std::optional<LiveMovesInFlight> live_moves_;
  // The failover under way: why, and each surviving holder's version once it answered.
  struct FailoverInFlight {
    std::string why;
    std::map<std::string, std::optional<uint64_t>> versions;
  };
  std::optional<FailoverInFlight> failover_;
  // Migrations whose boundary training never reached (it ended first): their old hosts
  // still hold the state, so the last checkpoint streams those actors from them.
  std::vector<cluster::LiveMove> unfinished_live_moves_;
  uint64_t trainer_step_ = 0;  // highest step a trainer's load report named
  // Trainers that must not learn the new table before their rollback order: from the
  // start of a recovery until each acknowledged its rollback, their placement queries
  // get no table (they poll again). Otherwise a trainer could refresh between the
  // restore and its rollback and run the abandoned step on restored actors, and its
  // replay of that step would then be refused as already run.
  std::set<std::string> trainers_awaiting_rollback_;
  uint64_t restore_generation_ = 0;  // restores begun; an answer to an older one's rollback releases nothing
  // Hosts that registered while no actors could move (no checkpoint yet, a recovery
  // or live moves under way): they get their share at the next committed checkpoint,
  // or once the live moves are done.
  std::set<std::string> hosts_waiting_to_join_;
  // The step every trainer finished at, once the last one left (a trainer that
  // registers again clears it): no automatic checkpoint is asked for beyond it.
  std::optional<uint64_t> finished_at_step_;
  // A trainer finished and left since the last trainer registration: a rollback now
  // would undo steps no trainer redoes, so no automatic rebalance moves actors.
  bool a_trainer_finished_ = false;
};

}  // namespace sy::coordinator
