# Dense parameter shards (embeddings, attention, layer norms, routers), hosted as actors
# next to the experts: trainers push gradient shards and pull fresh values.
@0x825a4a5729211387;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sy::proto::parameter");
using Envelope = import "envelope.capnp";

struct PushRequest {
  # Gradient contribution for one shard; frame "gradients" (elementCount) follows.
  shard @0 :UInt32;
  # Dense shard index.
  step @1 :UInt64;
  # Step the gradient belongs to.
  microBatches @2 :List(UInt32);
  # Micro-batches summed into this contribution (a whole subtree of the fixed tree).
  elementCount @3 :UInt64;
  # Number of elements in the shard; the frame holds them as f32, or as bf16 when every
  # sum of the step's tree is rounded to bf16 (--dense_wire_dtype=bf16; one dtype a step).
  trainer @4 :Text;
  # Trainer node id.
}

struct PushReply {
  # Acknowledges a push.
  shard @0 :UInt32;
  # Echo.
  step @1 :UInt64;
  # Echo.
  applied @2 :Bool;
  # true once all M micro-batches are in and the optimizer moved the shard to step+1.
}

struct PullRequest {
  # Ask for a shard's values at a version; waits until the shard reaches it.
  shard @0 :UInt32;
  # Dense shard index.
  version @1 :UInt64;
  # Wanted version (step); 0 = current.
  target @2 :PullTarget;
  # denseShard: `shard`; expert: the expert (expertLayer, expertIndex), for checksums.
  expertLayer @3 :UInt32;
  # Model layer of the expert, as in BucketId (target == expert).
  expertIndex @4 :UInt32;
  # Expert index within that Switch layer (target == expert).
  dtype @5 :Envelope.DType;
  # Element type of the reply's values (denseShard): f32, or bf16 rounded from the
  # host's f32 master weights (--dense_wire_dtype=bf16).
}

enum PullTarget {
  # What a pull reads.
  denseShard @0;
  # A dense parameter shard.
  expert @1;
  # An expert's weights [w_in | b_in | w_out | b_out] (C*F + F + F*C + C floats).
}

struct PullReply {
  # Shard values; frame "parameters" (elementCount) follows.
  shard @0 :UInt32;
  # Echo.
  version @1 :UInt64;
  # Version of the values sent.
  elementCount @2 :UInt64;
  # Number of elements.
}
