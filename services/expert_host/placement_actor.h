// An expert host's placement handling, as one actor: applies the coordinator's
// placement tables (builds the actors a table adds here, which wait for a restore;
// removes those it no longer places here, whose waiting requests fail NotFound;
// tells the StepActor the new set between steps; connects to replica hosts and tells
// every replicated actor its peers), and hands out an actor to work that must see
// every table told before it (a restore chunk sent right behind its placement). A
// table that moves actors live takes effect at a step boundary: an actor moving away
// stays until it applied the move's last step, then its state is streamed to its new
// host; an actor moving here waits for that state (LiveArrivals); the StepActor gets
// the new set for the steps after the boundary. A
// table older than the accepted one is refused (Aborted); a failure to build leaves
// the host as it was. Runs on the runtime's thread, the one that uses the backend.
// With die_moving_out (tests) the host SIGKILLs itself once a moving actor handed
// its state over, before streaming it. Thread-safe as every Actor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "common/actor/actor.h"
#include "common/metrics/registry.h"
#include "common/transport/rpc.h"
#include "services/cluster/actor_key.h"
#include "services/expert_host/actor_factory.h"
#include "services/cluster/placement_table.h"
#include "services/expert_host/held_actors.h"
#include "services/expert_host/live_arrivals.h"
#include "services/expert_host/param_actor.h"
#include "services/expert_host/replica_links.h"
#include "services/expert_host/step_actor.h"

namespace sy::expert_host {

// A coordinator table checked at the door: the actors it places here, each with its
// other replicas' hosts (empty: not replicated), and where those hosts are.
struct PlaceMsg {
  uint64_t epoch = 0;
  std::map<cluster::ActorKey, std::vector<std::string>> mine;
  std::map<std::string, std::string> endpoints;  // host id -> endpoint
  // Live moves (the table's, into or out of this host) and their last step on the old
  // hosts (0: the table applies at once). Every host keeps serving the previous epoch's
  // requests until it applied that step.
  std::vector<cluster::LiveMove> live;
  uint64_t live_after = 0;
  // A failover's table: the open step is dropped (once per epoch) and the reply names
  // the version the host is at.
  bool drop_open_step = false;
  // The cluster's first placement: actors it adds start at their initial state.
  bool initial = false;
  transport::Responder responder;
};
// `then` gets `key`'s actor (or NotFound) once every table told before is in force.
struct WithActorMsg {
  cluster::ActorKey key;
  std::function<void(absl::StatusOr<std::shared_ptr<ParamActor>>)> then;
};
using PlacementActorMsg = std::variant<PlaceMsg, WithActorMsg>;

class PlacementActor : public actor::Actor<PlacementActorMsg> {
 public:
  // Everything passed must outlive the actor; `self` is this host's node id.
  PlacementActor(actor::Executor& executor, std::string self, const ActorFactory* factory, HeldActors* held,
                 std::shared_ptr<StepActor> step, ReplicaLinks* replicas, LiveArrivals* arriving,
                 metrics::Registry* registry, bool die_moving_out = false);

 private:
  void OnPlace(PlaceMsg& m);
  absl::Status Apply(const PlaceMsg& m);
  // Connects to the replica hosts and tells every actor whose peers changed its peers
  // (with live moves, for the steps after their boundary).
  void TellReplicas(const PlaceMsg& m);
  // How `key` reaches its replica `peers`.
  ReplicasMsg ReplicasOf(const cluster::ActorKey& key, const std::vector<std::string>& peers);
  // Live moves of `m` out of this host: each actor hands its state over once it applied
  // m.live_after, and it is streamed to its new host.
  void StartMovesOut(const PlaceMsg& m);

  const std::string self_;
  const ActorFactory* factory_;
  HeldActors* held_;
  std::shared_ptr<StepActor> step_;
  ReplicaLinks* replicas_;
  LiveArrivals* arriving_;
  metrics::Registry* registry_;
  const bool die_moving_out_;  // fault injection: SIGKILL with a moving actor's state in hand
  bool stepped_nothing_ = false;  // the last table gave the StepActor no actor
  uint64_t dropped_at_epoch_ = 0;  // the last failover table that dropped the open step
  std::map<cluster::ActorKey, std::vector<std::string>> replica_peers_;  // as last told to each actor
};

}  // namespace sy::expert_host
