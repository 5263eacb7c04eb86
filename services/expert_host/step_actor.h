// The host's side of the step protocol (proto/expert.capnp StepRequest), as one
// actor: collects the trainers' commits (with per-micro-batch stats), closes the
// step on every ParamActor once all M micro-batches are in, answers the leader's
// norm gather with every segment's squared norm, runs the leader's apply on every
// actor (the host's version becomes the step), and answers status queries. A step
// that stays incomplete past the step timeout (counted from when the host first
// sees it) is reported: an ERROR log naming the step and the missing micro-batches,
// sy_host_step_timeouts_total, and parked gathers fail with Aborted (the
// coordinator's recovery retries higher up). The host keeps serving meanwhile and
// drops nothing. The set of actors follows the placement (SetActorsMsg): it is
// replaced between steps, never while a step is being closed or applied (then the
// new set waits for the end of that step or for a rollback), and for a live move only
// once the host applied the move's last step (installed with that step's apply).
// Thread-safe as every Actor.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <variant>
#include <vector>

#include "absl/time/time.h"
#include "common/actor/actor.h"
#include "common/metrics/registry.h"
#include "common/transport/rpc.h"
#include "services/cluster/step_wire.h"
#include "services/expert_host/param_actor.h"

namespace sy::expert_host {

struct CommitMsg {
  uint64_t step = 0;
  std::vector<uint32_t> micro_batches;
  std::vector<cluster::MicroBatchStatsValue> stats;
  transport::Responder responder;
};
struct GatherMsg {
  uint64_t step = 0;
  transport::Responder responder;  // answered once all M micro-batches of `step` are committed
};
struct StepApplyMsg {
  uint64_t step = 0;
  float clip_scale = 1.0f;
  float lr = 0.0f;
  transport::Responder responder;
};
struct HostStatusMsg {
  transport::Responder responder;
};
// A request for `step` reached the host (opens the step's timeout clock).
struct StepSeenMsg {
  uint64_t step = 0;
};
// Internal: one actor closed the step / applied it. `round` names the step attempt the
// request belonged to (a rollback or a failed attempt starts a new one; late answers
// of an older one are ignored).
struct FinalizedMsg {
  uint64_t step = 0;
  uint64_t round = 0;
  size_t actor = 0;
  absl::StatusOr<std::vector<double>> squares;
};
struct AppliedMsg {
  uint64_t step = 0;
  uint64_t round = 0;
  absl::Status status;
};
// Internal: actor `actor`'s answer to status query `query`.
struct ActorStatusMsg {
  uint64_t query = 0;
  size_t actor = 0;
  absl::StatusOr<ActorStatusValue> value;
};

// Every actor was restored to `version` (a checkpoint): the open step's commits,
// gathers and applies are dropped (parked gathers/applies fail with Aborted: the
// trainers roll back and replay) and the next step is version+1.
struct RollbackMsg {
  uint64_t version = 0;
};

// The placement changed: the host's actors are now `actors` (in key order), for the
// steps after `after_version` (a live move's last step on its old host; 0: at once).
// With catch_up (a host that took part in no step before, e.g. one joining) the host
// is at after_version at once: its actors all come live at that version.
struct SetActorsMsg {
  std::vector<std::shared_ptr<ParamActor>> actors;
  uint64_t after_version = 0;
  bool catch_up = false;
};

// A failover: the open step is dropped on every actor (an apply under way finishes
// first) and `done` gets the version the host is at; the trainers redo the step.
struct DropOpenStepMsg {
  std::function<void(uint64_t version)> done;
};

using StepActorMsg = std::variant<CommitMsg, GatherMsg, StepApplyMsg, HostStatusMsg, StepSeenMsg, FinalizedMsg,
                                  AppliedMsg, ActorStatusMsg, RollbackMsg, SetActorsMsg, DropOpenStepMsg>;

class StepActor : public actor::Actor<StepActorMsg> {
 public:
  StepActor(actor::Executor& executor, std::vector<std::shared_ptr<ParamActor>> actors, int num_micro_batches,
            absl::Duration step_timeout, metrics::Registry* registry);

  uint64_t timeouts() const { return static_cast<uint64_t>(timeouts_->value()); }
  // The version every actor applied (the last step closed, or the one restored to):
  // what a heartbeat reports, readable from any thread.
  uint64_t applied_version() const { return applied_version_.load(); }

 private:
  void Handle(StepActorMsg& msg);
  // The ParamActors' callbacks hold this actor weakly: it holds them, and a finalize
  // kept by one (waiting for a replica's contributions) made a cycle that outlived the host.
  std::weak_ptr<StepActor> Weak();
  static void TellIfAlive(const std::weak_ptr<StepActor>& self, StepActorMsg msg);
  void Open(uint64_t step);
  void OnCommit(CommitMsg& m);
  void OnGather(GatherMsg& m);
  void OnApply(StepApplyMsg& m);
  // A status query: every actor is asked, the reply goes out once all answered.
  struct StatusQuery {
    std::vector<ActorStatusValue> values;  // per actor asked
    absl::Status error;
    size_t left = 0;
    uint64_t version = 0, timeouts = 0;
    std::vector<uint32_t> missing;
    transport::Responder responder;
  };
  void OnStatus(HostStatusMsg& m);
  void OnActorStatus(ActorStatusMsg& m);
  void AnswerStatus(StatusQuery& query);
  void OnFinalized(FinalizedMsg& m);
  void OnTimeout(uint64_t step);
  void AnswerGathers();
  std::vector<uint32_t> Missing() const;
  void Reset();
  // Installs pending_actors_ when no step is being closed or applied.
  void MaybeInstallActors();
  // Fails the open step's waiting gathers and applies with `why` and forgets the step.
  void AbortOpenStep(const absl::Status& why);
  void DropOpenStep(const DropOpenStepMsg& m);
  // The drop asked for while applying (pending_drop_), now that the apply ended.
  void DropIfAsked();

  std::vector<std::shared_ptr<ParamActor>> actors_;
  std::optional<std::vector<std::shared_ptr<ParamActor>>> pending_actors_;  // the next set, once between steps
  uint64_t pending_after_version_ = 0;  // ... and once the host applied this version
  uint64_t round_ = 0;  // bumped by Reset
  int m_;
  absl::Duration step_timeout_;
  metrics::Registry* registry_;
  metrics::Counter* timeouts_;
  metrics::Histogram* step_seconds_;

  // The open step, version_ + 1.
  uint64_t version_ = 0;
  std::atomic<uint64_t> applied_version_{0};  // version_, for other threads
  bool opened_ = false;
  absl::Time opened_at_;
  actor::TimerId timer_ = 0;
  bool timed_out_ = false;
  std::map<uint32_t, cluster::MicroBatchStatsValue> committed_;
  bool finalizing_ = false;
  size_t finalized_ = 0;
  absl::Status finalize_error_;
  std::vector<std::vector<double>> squares_;  // per actor
  std::vector<transport::Responder> gathers_;
  bool applying_ = false;
  size_t applied_ = 0;
  absl::Status apply_error_;
  std::vector<transport::Responder> appliers_;
  std::optional<DropOpenStepMsg> pending_drop_;  // asked while applying: done after the apply

  // Status queries waiting for their actors' answers, by id.
  std::map<uint64_t, StatusQuery> status_queries_;
  uint64_t status_queries_sent_ = 0;
};

}  // namespace sy::expert_host
