# The header of every Switchyard message (frame 1 of a ZeroMQ multipart message).
# Frames 2.. carry raw tensor bytes, described here by TensorDesc in the same order;
# tensor bytes are never copied into this header. The service-specific body is an
# AnyPointer whose struct type is fixed by `kind` (see the table on MessageKind).
@0xc29eb1eb96f185ca;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sy::proto");

enum ErrorCode {
  # One value per absl::StatusCode, same numbers, mapped 1:1 by common/status.
  ok @0;
  # Success.
  cancelled @1;
  # The caller cancelled the operation.
  unknown @2;
  # An error with no better code.
  invalidArgument @3;
  # Malformed or inconsistent input: do not retry.
  deadlineExceeded @4;
  # The deadline passed before completion: retry with a new deadline.
  notFound @5;
  # The named entity (expert, shard, checkpoint, host) does not exist.
  alreadyExists @6;
  # The entity to create exists already.
  permissionDenied @7;
  # Authenticated but not allowed (e.g. admin call without the admin key).
  resourceExhausted @8;
  # A queue or quota is full: retry after backing off.
  failedPrecondition @9;
  # The system is not in a state for this (e.g. stale step): do not retry as is.
  aborted @10;
  # Concurrency conflict (e.g. stale placement epoch): retry higher up.
  outOfRange @11;
  # A value past a valid range (e.g. a step beyond the current one).
  unimplemented @12;
  # The receiver does not implement this message kind.
  internal @13;
  # An invariant broke inside the receiver.
  unavailable @14;
  # The receiver cannot serve now (starting, draining, overloaded): retry the call.
  dataLoss @15;
  # Unrecoverable loss or corruption of data.
  unauthenticated @16;
  # Missing or wrong credentials.
}

enum DType {
  # Element type of a tensor data frame. Computation is always float32.
  f32 @0;
  # IEEE float32, 4 bytes, little-endian.
  bf16 @1;
  # bfloat16 (upper half of a float32), 2 bytes, little-endian.
}

enum TensorRole {
  # What a tensor frame is for; lets a receiver find frames without relying on order alone.
  activations @0;
  # Token activations entering an expert (tokens, d_model).
  outputs @1;
  # Expert outputs (tokens, d_model).
  outputGrad @2;
  # Gradient w.r.t. the expert outputs (tokens, d_model).
  inputGrad @3;
  # Gradient w.r.t. the expert inputs (tokens, d_model).
  parameters @4;
  # Parameter values (a shard, an expert weight, Adam moments).
  gradients @5;
  # Parameter gradients.
  state @6;
  # Opaque state bytes (checkpoint or migration chunk), dtype f32 by convention.
  other @7;
  # Anything else, named by `name`.
}

struct TensorDesc {
  # Describes one data frame that follows the header.
  name @0 :Text;
  # Free-form name, e.g. "w_in" or "bucket".
  role @1 :TensorRole;
  # What the tensor is for.
  dtype @2 :DType;
  # Element type of the bytes in the frame.
  shape @3 :List(UInt64);
  # Dimensions, outermost first; the product times the dtype size is byteLength.
  byteLength @4 :UInt64;
  # Exact size of the data frame in bytes.
}

enum MessageKind {
  # Selects the body struct. Requests and replies share a kind; `isReply` tells them apart.
  invalid @0;
  # Never sent: a zero-initialised header is rejected.
  ping @1;
  # Body: none (null). Liveness and transport tests.
  expertForward @2;
  # Body: expert.ExpertForward{Request,Reply}.
  expertBackward @3;
  # Body: expert.ExpertBackward{Request,Reply}.
  stepCommit @4;
  # Body: expert.Step{Request,Reply} (the step protocol: commit, norm gather, apply, status).
  stateStream @5;
  # Body: expert.StateStream{Request,Reply} (an actor's state out or in: checkpoints, restores).
  paramPush @6;
  # Body: parameter.Push{Request,Reply} (dense gradient shard).
  paramPull @7;
  # Body: parameter.Pull{Request,Reply} (dense parameter values).
  register @8;
  # Body: coordinator.Register{Request,Reply}.
  heartbeat @9;
  # Body: coordinator.Heartbeat{Request,Reply}.
  placement @10;
  # Body: coordinator.Placement{Request,Reply} (get the table, or a pushed update).
  loadReport @11;
  # Body: coordinator.LoadReport{Request,Reply}.
  checkpointChunk @12;
  # Body: checkpoint.Chunk{Request,Reply}.
  checkpointManifest @13;
  # Body: checkpoint.Manifest{Request,Reply}.
  admin @14;
  # Body: admin.Admin{Request,Reply}.
  trainerControl @15;
  # Body: coordinator.TrainerControl{Request,Reply} (roll back / resume / stop).
  replicaGradients @16;
  # Body: expert.ReplicaGradients{Request,Reply} (host to host, between replicas of an actor).
  liveState @17;
  # Body: expert.LiveState{Request,Reply} (host to host: an actor's state moved live at a step boundary).
}

struct Status {
  # Outcome of a request, carried in every reply.
  code @0 :ErrorCode;
  # ok on success.
  message @1 :Text;
  # Human-readable detail when code != ok.
  currentEpoch @2 :UInt64;
  # With `aborted` for a stale epoch: the receiver's epoch, so the caller refreshes.
}

struct Envelope {
  # Frame 1 of every message.
  sender @0 :Text;
  # Node id of the sending process (e.g. "host-3", "trainer-0"); also its ZeroMQ routing id.
  requestId @1 :UInt64;
  # Unique per sender; a retry carries the same id; a reply echoes the request's id.
  ttlMs @2 :Int64;
  # Time to live: how long the sender still waits for the answer, in milliseconds from
  # when the receiver decodes the message (relative: no clock is shared, so skew does not
  # matter); 0 = none. Receivers cap it (EnvelopeLimits.max_ttl) and drop work past it.
  placementEpoch @3 :UInt64;
  # The placement-table epoch the sender acted on; 0 when not applicable.
  kind @4 :MessageKind;
  # Which body struct follows.
  isReply @5 :Bool;
  # false: a request; true: the reply to requestId.
  status @6 :Status;
  # Replies only: outcome. An error reply may carry no body.
  tensors @7 :List(TensorDesc);
  # One descriptor per data frame following this header, in frame order.
  body @8 :AnyPointer;
  # The kind-specific struct (see MessageKind), or null.
  attempt @9 :UInt32;
  # 0 for the first send, n for the n-th retry (diagnostics only; never part of identity).
  answeredBelow @10 :UInt64;
  # Requests only: the sender's lowest request id still waiting for its answer when this
  # was sent; every lower id of this sender is answered or given up, so the receiver may
  # forget the replies it keeps for their retries. 0 = not said.
}
