# Expert host service: forward/backward on token buckets, step commit, state streaming.
# Token activations and gradients travel as tensor data frames described in the
# envelope (TensorDesc), never inside these structs.
@0xe01e0ac4843fed47;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sy::proto::expert");

struct BucketId {
  # Identifies one bucket: the tokens of one micro-batch routed to one expert of one layer.
  step @0 :UInt64;
  # Global training step.
  microBatch @1 :UInt32;
  # Micro-batch index within the step, 0..M-1.
  layer @2 :UInt32;
  # Switch layer index.
  expert @3 :UInt32;
  # Expert index within the layer.
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

struct StepCommitRequest {
  # A trainer finished these micro-batches of `step` (forward and backward of every bucket).
  trainer @0 :Text;
  # Trainer node id.
  step @1 :UInt64;
  # The step being committed.
  microBatches @2 :List(UInt32);
  # Micro-batch indices this trainer completed.
  totalMicroBatches @3 :UInt32;
  # M: the step is complete once all of 0..M-1 are in.
  phase @4 :StepPhase;
  # What this request asks (the envelope has one kind for the whole step protocol).
  stats @5 :List(MicroBatchStats);
  # commit: one entry per micro-batch in `microBatches`, kept for the leader's metrics.
  clipScale @6 :Float32 = 1.0;
  # apply: factor the combined gradients are multiplied by first (1 = no clipping).
  learningRate @7 :Float32;
  # apply: AdamW learning rate of this step.
}

enum StepPhase {
  # The phases of the distributed step, in order, plus a read-only query.
  commit @0;
  # A trainer finished `microBatches` of `step` (their buckets and dense pushes are in).
  gatherNorms @1;
  # Leader: per-segment squared gradient norms of `step` once all M micro-batches are in
  # (waits until then, or fails with aborted after the host's step timeout).
  apply @2;
  # Leader: apply AdamW with (clipScale, learningRate) to every actor; version becomes `step`.
  status @3;
  # Anyone: the host's versions, actor checksums and step-timeout count (changes nothing).
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
  # Which actor.
  version @1 :UInt64;
  # Steps applied.
  checksum @2 :UInt64;
  # FNV-1a 64 over its weights and Adam moments.
  contributions @3 :UInt32;
  # Gradient contributions held for the open step.
}

struct StepCommitReply {
  # Progress of the step on this host.
  step @0 :UInt64;
  # Echo.
  received @1 :UInt32;
  # Micro-batches received so far for the step.
  applied @2 :Bool;
  # true once every expert on the host applied the update and moved to version step+1.
  segments @3 :List(SegmentNorm);
  # gatherNorms: every segment this host owns, in canonical order.
  stats @4 :List(MicroBatchStats);
  # gatherNorms: the stats of every committed micro-batch of the step, by index.
  version @5 :UInt64;
  # status/apply: the lowest version over the host's actors.
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
  # An expert of a layer.
  layer @0 :UInt32;
  # Switch layer index.
  expert @1 :UInt32;
  # Expert index within the layer.
}

enum StatePurpose {
  # Why state is streamed.
  checkpoint @0;
  # Copied to the coordinator for checkpoint `checkpointId`.
  migration @1;
  # Moved to another host (placement change); the source stops serving the actor.
  replication @2;
  # Copied to a second host that will serve it too.
}

struct StateStreamRequest {
  # Either ask a host to stream an actor's state out, or push a chunk of it in.
  purpose @0 :StatePurpose;
  # Why.
  actor @1 :ActorRef;
  # Whose state.
  union {
    streamOut @2 :StreamOut;
    # Ask the receiver to send the actor's state to `destination`.
    chunkIn @3 :ChunkIn;
    # A chunk of state for the receiver to install; frame "state" follows.
  }
  checkpointId @4 :UInt64;
  # For purpose == checkpoint: the checkpoint being taken; else 0.
}

struct StreamOut {
  # Where and how to stream.
  destination @0 :Text;
  # Node id (coordinator for checkpoints, a host for migration).
  destinationEndpoint @1 :Text;
  # Its ZeroMQ endpoint, e.g. "tcp://10.0.0.2:5555".
  atStep @2 :UInt64;
  # Stream the state as of this step boundary (waits for it).
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
  # Acknowledges a request.
  actor @0 :ActorRef;
  # Echo.
  chunksReceived @1 :UInt32;
  # For chunkIn: chunks installed so far; for streamOut: chunks sent.
  complete @2 :Bool;
  # true when the whole state is in (chunkIn) or out (streamOut).
}

struct ReplicaGradientsRequest {
  # Host to host, between the replicas of one actor: the sender's per-micro-batch
  # weight-gradient contributions of `step` (the micro-batches it served), sent once
  # every micro-batch of the step is committed. The receiver adds them to its own
  # before closing the step, so every replica combines all M contributions in the
  # same fixed tree. One f32 frame "gradient" (the actor's size) per micro-batch
  # follows, in `microBatches` order.
  actor @0 :ActorRef;
  # The replicated actor.
  step @1 :UInt64;
  # The open step the contributions belong to (== the receiver's version + 1).
  microBatches @2 :List(UInt32);
  # Ascending, each in [0, M); may be empty (the sender served none with tokens).
  sender @3 :Text;
  # The sending host's node id (one of the actor's other replicas).
}

struct ReplicaGradientsReply {
  # The contributions are in the receiver's tree.
  step @0 :UInt64;
  # Echo.
}
