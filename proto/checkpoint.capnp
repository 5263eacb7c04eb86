# Checkpoints: hosts stream actor state chunks to the coordinator, which writes them
# into RocksDB and commits the manifest LAST (a checkpoint without a manifest does not exist).
#
# Taking checkpoint k: the coordinator sends each actor's (first) host an
# expert.StateStreamRequest {purpose checkpoint, checkpointId k, streamOut {destination
# = coordinator, atStep s, chunkBytes}}; the host streams the actor's state at version s
# as ChunkRequests (frame "state", f32 by convention, so chunks are whole 4-byte words;
# ChunkIn.checksum = FNV-1a 64 of the whole state, common/storage/checksum.h) and answers
# the StateStreamRequest once every chunk was acknowledged. Restoring k: the coordinator
# sends every replica host StateStreamRequests {purpose checkpoint, checkpointId k,
# chunkIn} with the stored state, then tells every trainer to roll back to step s.
@0xd241cc82e4f7095b;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sy::proto::checkpoint");

using Expert = import "expert.capnp";

struct ChunkRequest {
  # One chunk of one actor's state for checkpoint `checkpointId`; frame "state" follows.
  checkpointId @0 :UInt64;
  # Which checkpoint (monotonic).
  step @1 :UInt64;
  # Step boundary the state belongs to.
  actor @2 :Expert.ActorRef;
  # Whose state.
  chunk @3 :Expert.ChunkIn;
  # Position of the chunk, sizes and checksum.
  host @4 :Text;
  # Host that sent it.
}

struct ChunkReply {
  # Acknowledgement (after the write to RocksDB).
  checkpointId @0 :UInt64;
  # Echo.
  stored @1 :Bool;
  # true once durable.
}

struct ActorEntry {
  # One actor in a manifest.
  actor @0 :Expert.ActorRef;
  # Whose state.
  version @1 :UInt64;
  # Actor version (== step).
  totalBytes @2 :UInt64;
  # Size of the serialized state.
  chunkCount @3 :UInt32;
  # Number of chunks stored.
  checksum @4 :UInt64;
  # Checksum of the whole state.
}

struct Manifest {
  # The commit record of a checkpoint.
  checkpointId @0 :UInt64;
  # Which checkpoint.
  step @1 :UInt64;
  # Step boundary.
  createdUnixMs @2 :Int64;
  # Commit time.
  epoch @3 :UInt64;
  # Placement epoch at the time.
  actors @4 :List(ActorEntry);
  # Every actor of the model.
  configHash @5 :UInt64;
  # Hash of the model/training config, checked on restore.
  seed @6 :UInt64;
  # Training seed.
}

struct ManifestRequest {
  # Read a manifest or list them (coordinator-internal and restore paths).
  union {
    get @0 :UInt64;
    # The manifest of this checkpoint id.
    latest @1 :Void;
    # The newest committed manifest.
    list @2 :Void;
    # All committed manifests (retention keeps the last K).
  }
}

struct ManifestReply {
  # The manifest(s) asked for.
  manifests @0 :List(Manifest);
  # One for get/latest, all for list; empty when none.
}
