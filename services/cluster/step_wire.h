// The step protocol's values in C++ form, shared by the trainer and the expert host:
// the per-micro-batch stats trainers commit (proto/expert.capnp CommitPhase.stats),
// the host hands back with the norm gather (StepReply.stats) and the leader turns
// into metrics.jsonl, with converters to and from the Cap'n Proto struct; and one
// actor's status as a host reports it (StepReply.actors); and the span of micro-batches
// one gradient contribution covers.
// Pure functions and values: thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/expert.capnp.h"
#include "services/cluster/actor_key.h"

namespace sy::cluster {

struct MicroBatchStatsValue {
  uint32_t micro_batch = 0;
  double loss = 0, ce = 0, lb = 0, z = 0;
  int64_t tokens = 0;
  int64_t dropped_tokens = 0;
  std::vector<int64_t> switch_layer_dropped_tokens;       // per Switch layer
  std::vector<std::vector<int64_t>> expert_counts;  // per Switch layer
  uint64_t bytes_sent = 0;
};

void StatsToWire(const MicroBatchStatsValue& v, proto::expert::MicroBatchStats::Builder out);
MicroBatchStatsValue StatsFromWire(proto::expert::MicroBatchStats::Reader in);

// proto ActorStatus: one actor (an expert by Switch layer, or a dense shard) and its state.
struct ActorStatusValue {
  ActorKey actor;
  uint64_t version = 0;
  uint64_t checksum = 0;
  uint32_t contributions = 0;
};

// The micro-batches [first, end) of one gradient contribution: a single micro-batch,
// or several pre-summed by their sender as one node of the step's fixed tree
// (gpu/model/grad_tree.h). On the wire (PushRequest.microBatches) every index is listed.
struct MicroBatchSpan {
  uint32_t first = 0;
  uint32_t end = 0;
  uint32_t size() const { return end - first; }
};

// The span of `list`, consecutive ascending indices each below `num_micro_batches`;
// InvalidArgument for an empty, unordered, gapped or out-of-range list. Whether the
// span is a node of the tree is the receiver's check (GradTree::IsNode).
absl::StatusOr<MicroBatchSpan> SpanOfList(capnp::List<uint32_t>::Reader list, uint32_t num_micro_batches);

}  // namespace sy::cluster
