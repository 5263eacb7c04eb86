// The coordinator's admin replies (proto admin.AdminReply), rendered from snapshots and
// plain values: status, hosts, experts, the per-step host load, the checkpoint list,
// a rebalance plan, and the short answers (a checkpoint id, done). Listings that grow
// with the run or the cluster go through cluster::ReplyAdmin (a data frame when large).
// Thread-safe: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "common/transport/rpc.h"
#include "services/coordinator/checkpoint_store.h"
#include "services/coordinator/cluster_snapshot.h"
#include "services/coordinator/host_load_series.h"
#include "services/coordinator/rebalance_planner.h"

namespace sy::coordinator {

void ReplyStatus(const StatusSnapshot& status, transport::Responder& responder);
void ReplyNodes(const std::vector<NodeSnapshot>& nodes, uint64_t epoch, transport::Responder& responder);
void ReplyExperts(const std::vector<ExpertSnapshot>& experts, uint64_t epoch, transport::Responder& responder);
// `series`: step -> the host load counted for it (HostLoadSeries::steps()).
void ReplyHostLoadSeries(const std::map<uint64_t, StepHostLoad>& series, uint64_t epoch,
                         transport::Responder& responder);
void ReplyCheckpointList(const std::vector<CheckpointInfo>& checkpoints, transport::Responder& responder);
void ReplyRebalance(const RebalancePlan& plan, bool applied, uint64_t epoch, transport::Responder& responder);
void ReplyCheckpointId(uint64_t id, uint64_t epoch, transport::Responder& responder);
void ReplyDone(uint64_t epoch, transport::Responder& responder);

}  // namespace sy::coordinator
