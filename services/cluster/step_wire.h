// The step protocol's values in C++ form, shared by the trainer and the expert
// host: per-micro-batch stats (what trainers commit and the leader turns into
// metrics.jsonl), segment norms, and converters to and from the Cap'n Proto
// structs in proto/expert.capnp.
// Pure functions and values: thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include <capnp/message.h>

#include "proto/envelope.capnp.h"
#include "proto/expert.capnp.h"

namespace sy::cluster {

struct MicroBatchStatsValue {
  uint32_t micro_batch = 0;
  double loss = 0, ce = 0, lb = 0, z = 0;
  int64_t tokens = 0;
  int64_t dropped_tokens = 0;
  std::vector<std::vector<int64_t>> expert_counts;  // per Switch layer
  uint64_t bytes_sent = 0;
};

struct SegmentNormValue {
  uint32_t param = 0;
  int expert = -1;
  double sum_squares = 0;
};

void StatsToWire(const MicroBatchStatsValue& v, proto::expert::MicroBatchStats::Builder out);
MicroBatchStatsValue StatsFromWire(proto::expert::MicroBatchStats::Reader in);

}  // namespace sy::cluster
