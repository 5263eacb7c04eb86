// Step-protocol converters (see step_wire.h).
#include "services/cluster/step_wire.h"

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
  auto dropped = out.initSwitchLayerDroppedTokens(static_cast<unsigned>(v.switch_layer_dropped_tokens.size()));
  for (size_t s = 0; s < v.switch_layer_dropped_tokens.size(); ++s) {
    dropped.set(static_cast<unsigned>(s), v.switch_layer_dropped_tokens[s]);
  }
  auto switch_layers = out.initExpertCounts(static_cast<unsigned>(v.expert_counts.size()));
  for (size_t s = 0; s < v.expert_counts.size(); ++s) {
    auto counts = switch_layers.init(static_cast<unsigned>(s), static_cast<unsigned>(v.expert_counts[s].size()));
    for (size_t e = 0; e < v.expert_counts[s].size(); ++e) counts.set(static_cast<unsigned>(e), v.expert_counts[s][e]);
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
  for (int64_t d : in.getSwitchLayerDroppedTokens()) v.switch_layer_dropped_tokens.push_back(d);
  for (auto switch_layer_counts : in.getExpertCounts()) {
    std::vector<int64_t> counts;
    for (int64_t c : switch_layer_counts) counts.push_back(c);
    v.expert_counts.push_back(std::move(counts));
  }
  return v;
}

}  // namespace sy::cluster
