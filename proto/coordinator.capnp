# Coordinator service: membership (register, heartbeat), the placement table with its
# epoch, per-expert load reports, and control messages to trainers (roll back, resume).
@0x8e7edaed694fdeec;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sy::proto::coordinator");

using Expert = import "expert.capnp";

enum Role {
  # What kind of process registers.
  expertHost @0;
  # sy-expert-host.
  trainer @1;
  # sy-trainer.
  admin @2;
  # syctl (short-lived).
}

struct RegisterRequest {
  # A process joins (or re-joins after a coordinator restart).
  nodeId @0 :Text;
  # Unique node id, also its ZeroMQ routing id.
  role @1 :Role;
  # Process kind.
  endpoint @2 :Text;
  # Where it accepts requests (ROUTER), e.g. "tcp://127.0.0.1:6001"; empty for trainers.
  device @3 :Text;
  # "cpu" or "cuda:N".
  memoryBytes @4 :UInt64;
  # Memory available for actors on that device.
  actors @5 :List(Expert.ActorRef);
  # Actors the process already holds (after a coordinator restart), else empty.
  incarnation @6 :UInt64;
  # Increases on every process start, to tell a restart from a duplicate register.
  shape @7 :ModelShape;
  # The shape of the node's model. The coordinator adopts the first registered node's
  # (or its saved placement's, after a restart) and refuses a node whose shape differs.
}

struct ModelShape {
  # The actors of a model, which the coordinator places.
  numSwitchLayers @0 :UInt32;
  # Switch layers (not the model's layers: the dense blocks have no experts).
  numExperts @1 :UInt32;
  # Experts per Switch layer.
  numDenseShards @2 :UInt32;
  # Dense parameter shards.
}

struct RegisterReply {
  # Admission.
  epoch @0 :UInt64;
  # Current placement epoch.
  heartbeatIntervalMs @1 :UInt32;
  # How often to send heartbeats.
  table @2 :PlacementTable;
  # The table as of `epoch`.
}

struct HeartbeatRequest {
  # Liveness and a little state.
  nodeId @0 :Text;
  # Sender.
  incarnation @1 :UInt64;
  # Same as in RegisterRequest.
  epoch @2 :UInt64;
  # Placement epoch the node acts on.
  step @3 :UInt64;
  # Last step the node completed; for a host, its actors' version (the number of steps
  # applied), i.e. the step boundary a checkpoint taken now would capture.
  draining @4 :Bool;
  # true while the node hands off its actors.
}

struct HeartbeatReply {
  # Tells the node whether it is behind.
  epoch @0 :UInt64;
  # Current epoch; a node with an older one pulls the table.
  reregister @1 :Bool;
  # true: the coordinator does not know the node (e.g. it restarted): register again.
  fenced @2 :Bool;
  # true: the coordinator declared this node failed (its actors were re-placed): it must
  # drop every actor of its old epoch and register again as a new node (with reregister).
}

struct Replica {
  # One host holding an actor.
  nodeId @0 :Text;
  # Host node id.
  endpoint @1 :Text;
  # Host endpoint.
  microBatchMod @2 :UInt32;
  # With replication: this replica serves micro-batches m where m % count == microBatchMod.
  microBatchCount @3 :UInt32;
  # Number of replicas splitting the micro-batches (1 = not replicated).
}

struct PlacementEntry {
  # Where one actor lives.
  actor @0 :Expert.ActorRef;
  # The expert or dense shard.
  replicas @1 :List(Replica);
  # One or more hosts.
}

struct PlacementTable {
  # The whole table at one epoch.
  epoch @0 :UInt64;
  # Increases on every change.
  entries @1 :List(PlacementEntry);
  # Every expert and dense shard.
  numSwitchLayers @2 :UInt32;
  # Switch layers in the model (ExpertKey.switchLayer is below it).
  numExperts @3 :UInt32;
  # Experts per Switch layer.
  numDenseShards @4 :UInt32;
  # Dense parameter shards.
  liveMoves @5 :List(LiveMove);
  # The moves that made this epoch from the previous one when they happen live: each takes
  # effect at step lastSourceStep + 1 (empty: the table applies at once).
}

struct LiveMove {
  # `actor` leaves `from` (or, keep, gains a replica) for `to` at a step boundary: `from`
  # serves it up to step lastSourceStep, streams its state at that version to `to`, and
  # `to` serves it from the step after.
  actor @0 :Expert.ActorRef;
  from @1 :Text;
  to @2 :Text;
  lastSourceStep @3 :UInt64;
  keep @4 :Bool;
}

struct PlacementRequest {
  # Get the table, or (coordinator -> host) install a new one.
  union {
    get @0 :Void;
    # Ask for the current table.
    update @1 :PlacementTable;
    # Pushed by the coordinator after a change.
  }
  knownEpoch @2 :UInt64;
  # For get: the epoch the caller has; the reply may omit the table if unchanged.
  dropOpenStep @3 :Bool;
  # With update (failover): the table drops a dead host whose actors all live on elsewhere;
  # the host drops its open step's contributions (the trainers redo that step) and answers
  # the version it is at.
  initial @4 :Bool;
  # With update: the cluster's first placement, before any step: the actors it places on
  # the host start at their initial state (from the seed), nothing is restored.
}

struct PlacementReply {
  # The current table.
  epoch @0 :UInt64;
  # Current epoch.
  table @1 :PlacementTable;
  # Null when the caller's knownEpoch is current, or for an update acknowledgement.
  version @2 :UInt64;
  # For an update with dropOpenStep: the steps the host has applied.
}

struct ExpertLoad {
  # Tokens routed to one expert during one step.
  expert @0 :Expert.ExpertKey;
  # Which expert.
  tokens @1 :UInt64;
  # Tokens routed to it (before capacity).
  dropped @2 :UInt64;
  # Tokens dropped by capacity.
}

struct LoadReportRequest {
  # A trainer's per-expert token counts for one step.
  trainer @0 :Text;
  # Trainer node id.
  step @1 :UInt64;
  # Step.
  loads @2 :List(ExpertLoad);
  # One entry per expert that received tokens.
}

struct LoadReportReply {
  # Acknowledgement.
  epoch @0 :UInt64;
  # Current epoch (a rebalance may have bumped it).
}

struct TrainerControlRequest {
  # Coordinator -> trainer after a failure or a restore.
  epoch @0 :UInt64;
  # New placement epoch.
  union {
    rollback @1 :Rollback;
    # Go back to a checkpointed step and replay from there.
    resume @2 :Void;
    # Continue (after a pause).
    pause @3 :Void;
    # Stop issuing requests until resume.
    stop @4 :Void;
    # Finish and exit.
  }
  reason @5 :Text;
  # stop: why the coordinator ends the run (the trainer exits with it as its error).
}

struct Rollback {
  # Where to roll back to.
  step @0 :UInt64;
  # First step to run again (its data cursor is a function of (seed, step)).
  checkpointId @1 :UInt64;
  # The checkpoint restored.
  trainers @2 :List(Text);
  # Live trainer ids in rank order, e.g. ["trainer-0","trainer-2"]; empty = unchanged.
  # Trainer i of n takes the micro-batches m with m % n == i; one not listed exits.
  failedAtUnixMs @3 :Int64;
  # When the coordinator detected the failure this rollback recovers from (Unix ms);
  # 0 when it recovers from none (moved actors, an operator's restore).
}

struct TrainerControlReply {
  # Acknowledgement.
  step @0 :UInt64;
  # The trainer's current step after acting.
}
