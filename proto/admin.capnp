# Admin API (syctl -> coordinator). Every call needs the admin CurveZMQ key when keys
# are configured. One request struct with a union of commands; one reply with a union of results.
@0xe469958b2d5bcd71;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sy::proto::admin");

using Expert = import "expert.capnp";
using Coord = import "coordinator.capnp";
using Checkpoint = import "checkpoint.capnp";

struct AdminRequest {
  # One syctl command.
  union {
    status @0 :Void;
    # Cluster summary.
    hosts @1 :Void;
    # Host list.
    experts @2 :Void;
    # Experts, their placement and load.
    checkpointNow @3 :Void;
    # Take a checkpoint at the next step boundary.
    checkpointList @4 :Void;
    # List committed checkpoints.
    checkpointRestore @5 :UInt64;
    # Restore this checkpoint id (cluster rolls back to it).
    rebalance @6 :Rebalance;
    # Rebalance hot experts now.
    drain @7 :Text;
    # Drain this host (hand off its actors, then it exits).
    removeHost @8 :Text;
    # Forget a host (treated as failed).
    faults @9 :Faults;
    # Set fault injection on a node's transport.
    hostLoadSeries @10 :Void;
    # Each step's tokens per host, counted with the placement in force when its load reports arrived.
  }
}

struct Rebalance {
  # Options for a rebalance.
  dryRun @0 :Bool;
  # Only compute and report the moves.
  threshold @1 :Float64;
  # Load ratio (host load / mean) above which a host is hot; 0 = default.
}

struct Faults {
  # Fault injection on one node.
  nodeId @0 :Text;
  # Target node ("" = coordinator itself).
  spec @1 :Text;
  # Spec string, e.g. "drop=0.1,dup=0.05,delay_ms=20,reorder=0.1,seed=7"; "" clears.
}

struct HostInfo {
  # One host as the coordinator sees it.
  nodeId @0 :Text;
  # Node id.
  endpoint @1 :Text;
  # Endpoint.
  role @2 :Coord.Role;
  # Process kind.
  alive @3 :Bool;
  # Heartbeats current.
  draining @4 :Bool;
  # Being drained.
  lastHeartbeatUnixMs @5 :Int64;
  # Last heartbeat time.
  actorCount @6 :UInt32;
  # Actors placed on it.
  load @7 :Float64;
  # Tokens per step over its actors (last report).
  device @8 :Text;
  # "cpu" or "cuda:N".
  step @9 :UInt64;
  # Last step the node reported (its actors' version).
  memoryBytes @10 :UInt64;
  # Capacity it registered with.
}

struct ExpertInfo {
  # One expert with its placement and load.
  expert @0 :Expert.ExpertKey;
  # Which expert.
  hosts @1 :List(Text);
  # Node ids holding it.
  tokensLastStep @2 :UInt64;
  # Tokens routed to it in the last reported step.
  droppedLastStep @3 :UInt64;
  # Tokens dropped by capacity in the last reported step.
  load @4 :Float64;
  # Moving average of tokens per step (what the rebalancer uses).
}

struct ClusterStatus {
  # Summary for `syctl status`.
  epoch @0 :UInt64;
  # Placement epoch.
  step @1 :UInt64;
  # Latest completed step.
  hostsAlive @2 :UInt32;
  # Live hosts.
  hostsTotal @3 :UInt32;
  # Known hosts.
  trainers @4 :UInt32;
  # Registered trainers.
  latestCheckpoint @5 :UInt64;
  # Newest committed checkpoint id; 0 = none.
  phase @6 :Text;
  # "training", "recovering", "paused", ...
  checkpointInProgress @7 :UInt64;
  # Id of the checkpoint being taken; 0 = none.
  placementReady @8 :Bool;
  # true once every actor has a host.
  maxOverMeanLoad @9 :Float64;
  # Hottest host load / mean host load (0 without load reports).
  recoveries @10 :UInt32;
  # Host failures recovered since the coordinator started.
  checkpointsCommitted @11 :UInt32;
  # Checkpoints committed since the coordinator started.
  migrations @12 :UInt32;
  # Actors moved to another host since the coordinator started.
  replications @13 :UInt32;
  # Replicas added since the coordinator started.
  latestCheckpointStep @14 :UInt64;
  # Step of the newest committed checkpoint (with latestCheckpoint; 0 = none).
  checkpointInProgressStep @15 :UInt64;
  # Step of checkpointInProgress (0 = none).
  insecure @16 :Bool;
  # The coordinator runs --insecure: plain TCP, no keys, any peer trusted.
}

struct Move {
  # One placement change made or proposed by a rebalance.
  actor @0 :Expert.ActorRef;
  # What moves.
  fromHost @1 :Text;
  # Source ("" for a new replica).
  toHost @2 :Text;
  # Destination.
  replicate @3 :Bool;
  # true: a replica is added; false: the actor moves.
}

struct AdminReply {
  # Result of one command (errors travel in the envelope status).
  union {
    status @0 :ClusterStatus;
    # For status.
    hosts @1 :List(HostInfo);
    # For hosts.
    experts @2 :List(ExpertInfo);
    # For experts.
    checkpointId @3 :UInt64;
    # For checkpointNow (the id that will be taken) and checkpointRestore.
    checkpoints @4 :List(Checkpoint.Manifest);
    # For checkpointList.
    moves @5 :List(Move);
    # For rebalance.
    done @6 :Void;
    # For drain, removeHost, faults.
    rebalance @7 :RebalanceResult;
    # For rebalance (supersedes `moves`).
    hostLoadSeries @8 :List(StepHostLoad);
    # For hostLoadSeries, in step order.
    inFrame @9 :Void;
    # A reply too large for a header (a listing that grows with the run or the cluster):
    # the whole AdminReply is the one data frame "admin_reply", a Cap'n Proto message
    # (flat array of 8-byte words, described as f32 elements by convention).
  }
}

struct RebalanceResult {
  # What a rebalance did or would do.
  moves @0 :List(Move);
  # The placement changes, in order.
  maxOverMeanBefore @1 :Float64;
  # Hottest host load / mean before (0 without load).
  maxOverMeanAfter @2 :Float64;
  # Predicted after the moves.
  applied @3 :Bool;
  # false for a dry run (or when there was nothing to do).
  epoch @4 :UInt64;
  # Placement epoch after the call.
}

struct StepHostLoad {
  # One training step's load per host, as the coordinator counted it.
  step @0 :UInt64;
  # The step.
  epoch @1 :UInt64;
  # Placement epoch its load reports were counted with (a replayed step: the replay's).
  hosts @2 :List(Text);
  # Every host of that placement.
  tokens @3 :List(Float64);
  # Tokens routed to each host's experts (same order as hosts; a replicated expert's split evenly).
  maxOverMean @4 :Float64;
  # Hottest host's tokens over the mean host's (0 without tokens).
}
