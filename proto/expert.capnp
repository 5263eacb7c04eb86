# Expert host service: forward/backward on token buckets, the step protocol, state
# streaming, and replica gradients between hosts.
# Token activations and gradients travel as tensor data frames described in the
# envelope (TensorDesc), never inside these structs.
@0xe01e0ac4843fed47;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sy::proto::expert");

struct BucketId {
  # Identifies one bucket: the tokens of one micro-batch routed to one expert of one
  # Switch layer. Data-plane requests name the layer as the model does (the dropout keys
  # and parameter names use the model layer); the control plane names experts by
  # ExpertKey.switchLayer instead.
  step @0 :UInt64;
  # Global training step.
  microBatch @1 :UInt32;
  # Micro-batch index within the step, 0..M-1.
  layer @2 :UInt32;
  # Model layer index (0..layers-1); it must be one of the model's Switch layers.
  expert @3 :UInt32;
  # Expert index within that Switch layer.
}

struct ExpertForwardRequest {
  # Run an expert FFN on a bucket; frame "activations" (tokenCount, dModel) follows.
  bucket @0 :BucketId;
  # Which bucket.
  tokenCount @1 :UInt32;
  # Rows in the activation frame (may be 0).
  dModel @2 :UInt32;
  # Columns in the activation frame.
  version @3 :UInt64;
  # Expert version the trainer expects (== step); a newer request waits, an older one is refused.
  training @4 :Bool;
  # true: keep what backward needs and apply expert dropout; false: evaluation.
  dropoutSeed @5 :UInt64;
  # Seed of the counter-based dropout masks (indexed by bucket and token).
}

struct ExpertForwardReply {
  # Expert outputs; frame "outputs" (tokenCount, dModel) follows.
  bucket @0 :BucketId;
  # Echo of the request's bucket.
  tokenCount @1 :UInt32;
  # Rows in the output frame.
  version @2 :UInt64;
  # Expert version that computed the outputs.
}

struct ExpertBackwardRequest {
  # Backward through an expert; frame "outputGrad" (tokenCount, dModel) follows,
  # and "activations" too when the host did not keep them (recompute).
  bucket @0 :BucketId;
  # Which bucket (its forward ran earlier).
  tokenCount @1 :UInt32;
  # Rows in the gradient frame.
  dModel @2 :UInt32;
  # Columns in the gradient frame.
  version @3 :UInt64;
  # Expert version of the matching forward.
}

struct ExpertBackwardReply {
  # Input gradients; frame "inputGrad" (tokenCount, dModel) follows. The weight-gradient
  # contribution of (step, microBatch) stays on the host until the step commits.
  bucket @0 :BucketId;
  # Echo of the request's bucket.
  tokenCount @1 :UInt32;
  # Rows in the input-gradient frame.
}

struct StepRequest {
  # One request of the step protocol (envelope kind stepCommit): the union says which.
  # The phases of a distributed step run in this order: every trainer commits, the
  # leader gathers the norms, then the leader applies; status is a read-only query.
  union {
    commit @0 :CommitPhase;
    # A trainer finished some micro-batches of a step (their buckets and dense pushes are in).
    gatherNorms @1 :GatherNormsPhase;
    # Leader: per-segment squared gradient norms of a step once all M micro-batches are in
    # (waits until then, or fails with aborted after the host's step timeout).
    apply @2 :ApplyPhase;
    # Leader: apply AdamW to every actor; the host's version becomes the step.
    status @3 :Void;
    # Anyone: the host's versions, actor checksums, step-timeout count and the open
    # step's missing micro-batches (changes nothing).
  }
}

struct CommitPhase {
  # Micro-batches a trainer completed (forward and backward of every bucket).
  step @0 :UInt64;
  # The step being committed (steps start at 1).
  totalMicroBatches @1 :UInt32;
  # M: the step is complete once all of 0..M-1 are in (must match the host's M).
  microBatches @2 :List(UInt32);
  # Micro-batch indices this trainer completed, each in [0, M).
  stats @3 :List(MicroBatchStats);
  # One entry per micro-batch in `microBatches`, kept for the leader's metrics.
  trainer @4 :Text;
  # Node id of the committing trainer.
}

struct GatherNormsPhase {
  # The leader asks for the step's gradient norms.
  step @0 :UInt64;
  # The step whose norms are asked for (steps start at 1).
  totalMicroBatches @1 :UInt32;
  # M (must match the host's M).
}

struct ApplyPhase {
  # The leader applies the step.
  step @0 :UInt64;
  # The step to apply (steps start at 1).
  totalMicroBatches @1 :UInt32;
  # M (must match the host's M).
  clipScale @2 :Float32 = 1.0;
  # Factor the combined gradients are multiplied by first: 0 < clipScale <= 1 (1 = no clipping).
  learningRate @3 :Float32;
  # AdamW learning rate of this step (finite, >= 0).
}

struct MicroBatchStats {
  # What one micro-batch's forward/backward measured, for the leader's metrics.jsonl.
  microBatch @0 :UInt32;
  # Index within the step.
  loss @1 :Float64;
  # ce + lb + z.
  ce @2 :Float64;
  # Mean cross-entropy.
  lb @3 :Float64;
  # Load-balancing loss summed over Switch layers.
  z @4 :Float64;
  # Router z-loss summed over Switch layers.
  tokens @5 :Int64;
  # Tokens in the micro-batch.
  droppedTokens @6 :Int64;
  # Tokens over capacity, summed over Switch layers.
  expertCounts @7 :List(List(Int64));
  # Per Switch layer, tokens routed to each expert (before capacity).
  bytesSent @8 :UInt64;
  # Data bytes the trainer sent for this micro-batch (buckets, gradients, dense pushes).
  switchLayerDroppedTokens @9 :List(Int64);
  # Per Switch layer, tokens over capacity (they sum to droppedTokens).
}

struct SegmentNorm {
  # Sum of squares of one gradient segment (see gpu/model/optimizer.h GradSegment).
  param @0 :UInt32;
  # Canonical parameter index.
  expert @1 :Int32;
  # Expert slice, or -1 for a whole dense tensor.
  sumSquares @2 :Float64;
  # Backend::SumSquares of the combined (unclipped) gradient of the segment.
}

struct ActorStatus {
  # One actor's state, for status queries and tests.
  actor @0 :ActorRef;
  # Which actor; an expert is named by its Switch-layer index, as everywhere in the
  # control plane.
  version @1 :UInt64;
  # Steps applied.
  checksum @2 :UInt64;
  # FNV-1a 64 over its weights and Adam moments.
  contributions @3 :UInt32;
  # Gradient contributions held for the open step.
}

struct StepReply {
  # The host's answer to every phase of StepRequest; each field names the phases that fill it.
  step @0 :UInt64;
  # All: the step asked about (status: the open step, version + 1).
  received @1 :UInt32;
  # commit, gatherNorms: micro-batches of the step received so far; apply: M once applied.
  applied @2 :Bool;
  # commit, apply: true when the step is applied on every actor of the host.
  segments @3 :List(SegmentNorm);
  # gatherNorms: every segment this host owns, in canonical order.
  stats @4 :List(MicroBatchStats);
  # gatherNorms: the stats of every committed micro-batch of the step, by index.
  version @5 :UInt64;
  # All: the last step applied on this host (the version of its actors).
  actors @6 :List(ActorStatus);
  # status: every actor on the host.
  stepTimeouts @7 :UInt64;
  # status: steps that stayed incomplete past the host's step timeout.
  missingMicroBatches @8 :List(UInt32);
  # status: micro-batches of the open step not committed yet.
}

struct ActorRef {
  # One actor whose state moves: an expert or a dense parameter shard.
  union {
    expert @0 :ExpertKey;
    # A Switch-layer expert.
    denseShard @1 :UInt32;
    # A dense parameter shard index.
  }
}

struct ExpertKey {
  # An expert as the control plane names it: placement tables, checkpoints, load
  # reports, admin listings, state streams and ActorStatus.
  switchLayer @0 :UInt32;
  # Switch-layer index: 0 is the model's first Switch layer, 1 its second, and so on
  # (not the model layer: with moe_every = 2, Switch layer 0 is model layer 1).
  expert @1 :UInt32;
  # Expert index within that Switch layer.
}

struct StateStreamRequest {
  # Moves one actor's serialized state (weights and Adam moments at one version, as
  # ParamState saves it) between nodes, in chunks. streamOut asks the host holding the
  # actor to send the state to `destination`; chunkIn hands a host one chunk to install.
  # A chunkIn carries all a receiver checks before installing, whoever sends it: the
  # sender (envelope), the actor, the state's version, the chunk's place, the total size
  # and the checksum. Today the coordinator sends both: checkpoints and their restore.
  actor @0 :ActorRef;
  # Whose state.
  union {
    streamOut @1 :StreamOut;
    # To the host holding the actor: stream its state to `destination`.
    chunkIn @2 :ChunkIn;
    # To a host that installs the state: one chunk of it; frame "state" follows.
  }
  checkpointId @3 :UInt64;
  # streamOut: the checkpoint being taken. chunkIn: the checkpoint being restored (the
  # host names it when the state does not verify).
}

struct StreamOut {
  # Where and how the holder streams the state.
  destination @0 :Text;
  # Node id the state goes to. A host streams only to the node that asks, its coordinator,
  # as checkpoint.ChunkRequests; another destination is refused with failedPrecondition.
  destinationEndpoint @1 :Text;
  # The destination's ZeroMQ endpoint, named in that refusal (a host reaches its
  # coordinator through its coordinator link).
  atStep @2 :UInt64;
  # Stream the state as of this step boundary (the holder waits until it gets there).
  chunkBytes @3 :UInt64;
  # Maximum bytes per chunk.
}

struct ChunkIn {
  # One chunk of an actor's state.
  version @0 :UInt64;
  # Actor version (step) of the state.
  index @1 :UInt32;
  # Chunk index, 0-based.
  count @2 :UInt32;
  # Number of chunks of this actor's state.
  offset @3 :UInt64;
  # Byte offset of this chunk in the actor's serialized state.
  totalBytes @4 :UInt64;
  # Size of the whole serialized state.
  checksum @5 :UInt64;
  # Checksum of the whole state, checked after the last chunk.
}

struct StateStreamReply {
  # Acknowledges a StateStreamRequest.
  actor @0 :ActorRef;
  # Echo.
  chunksReceived @1 :UInt32;
  # For chunkIn: chunks installed so far; for streamOut: chunks sent.
  complete @2 :Bool;
  # true when the whole state is in (chunkIn) or out (streamOut).
}

struct LiveStateRequest {
  # Host to host: one chunk of an actor's state (weights, Adam moments, as ParamState saves
  # them) at version `chunk.version`, streamed by the host that held it (`sender`) when it
  # closed that step, to the host the placement moves it to (a live move: nothing is
  # restored or replayed). The receiver installs it only when the placement told it to
  # expect `actor` from `sender` at that version, and the whole state has the announced
  # size and checksum; frame "state" follows.
  actor @0 :ActorRef;
  sender @1 :Text;
  # Node id of the host streaming it.
  chunk @2 :ChunkIn;
}

struct LiveStateReply {
  # Acknowledges one LiveStateRequest chunk.
  actor @0 :ActorRef;
  # Echo.
  chunksReceived @1 :UInt32;
  complete @2 :Bool;
  # true once the whole state is installed.
}

struct ReplicaGradientsRequest {
  # Host to host, between the replicas of one actor: the sender's weight-gradient
  # contributions of `step` (the micro-batches it served or was pushed), sent once
  # every micro-batch of the step is committed. The receiver adds them to its own
  # before closing the step, so every replica combines all M contributions in the
  # same fixed tree. One f32 frame "gradient" (the actor's size) per contribution
  # follows, in `microBatches` order.
  actor @0 :ActorRef;
  # The replicated actor.
  step @1 :UInt64;
  # The open step the contributions belong to (== the receiver's version + 1).
  microBatches @2 :List(UInt32);
  # The first micro-batch of each contribution: ascending, each in [0, M); may be
  # empty (the sender served none with tokens).
  sender @3 :Text;
  # The sending host's node id (one of the actor's other replicas).
  ends @4 :List(UInt32);
  # Empty: contribution i is micro-batch microBatches[i]. Else one per contribution:
  # contribution i is micro-batches [microBatches[i], ends[i]), a node of the step's
  # tree that a trainer pushed pre-summed.
}

struct ReplicaGradientsReply {
  # The contributions are in the receiver's tree.
  step @0 :UInt64;
  # Echo.
}
