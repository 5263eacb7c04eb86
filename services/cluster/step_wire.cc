// Step-protocol converters (see step_wire.h).
#include "services/cluster/step_wire.h"

#include "absl/strings/str_cat.h"
#include "services/cluster/capnp_lists.h"

namespace sy::cluster {

void StatsToWire(const MicroBatchStatsValue& v, proto::expert::MicroBatchStats::Builder out) {
  out.setMicroBatch(v.micro_batch);
  out.setLoss(v.loss);
  out.setCe(v.ce);
  out.setLb(v.lb);
  out.setZ(v.z);
  out.setTokens(v.tokens);
  out.setDroppedTokens(v.dropped_tokens);
  out.setBytesSent(v.bytes_sent);
  FillList(out.initSwitchLayerDroppedTokens(ListSize(v.switch_layer_dropped_tokens)), v.switch_layer_dropped_tokens);
  auto switch_layers = out.initExpertCounts(ListSize(v.expert_counts));
  for (unsigned s = 0; s < ListSize(v.expert_counts); ++s) {
    FillList(switch_layers.init(s, ListSize(v.expert_counts[s])), v.expert_counts[s]);
  }
}

MicroBatchStatsValue StatsFromWire(proto::expert::MicroBatchStats::Reader in) {
  MicroBatchStatsValue v;
  v.micro_batch = in.getMicroBatch();
  v.loss = in.getLoss();
  v.ce = in.getCe();
  v.lb = in.getLb();
  v.z = in.getZ();
  v.tokens = in.getTokens();
  v.dropped_tokens = in.getDroppedTokens();
  v.bytes_sent = in.getBytesSent();
  v.switch_layer_dropped_tokens = ListToVector<int64_t>(in.getSwitchLayerDroppedTokens());
  for (auto counts : in.getExpertCounts()) v.expert_counts.push_back(ListToVector<int64_t>(counts));
  return v;
}

absl::StatusOr<MicroBatchSpan> SpanOfList(capnp::List<uint32_t>::Reader list, uint32_t num_micro_batches) {
  if (list.size() == 0) return absl::InvalidArgumentError("a contribution names no micro-batch");
  const MicroBatchSpan span{list[0], list[0] + list.size()};
  for (unsigned i = 0; i < list.size(); ++i) {
    if (list[i] != span.first + i) {
      return absl::InvalidArgumentError("a contribution's micro-batches must be consecutive and ascending");
    }
  }
  if (span.end > num_micro_batches || span.end < span.first) {
    return absl::InvalidArgumentError(absl::StrCat("micro-batches [", span.first, ", ", span.first + list.size(),
                                                   ") reach past the step's ", num_micro_batches));
  }
  return span;
}

}  // namespace sy::cluster
