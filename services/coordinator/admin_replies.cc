// The coordinator's admin replies rendered from snapshots (see admin_replies.h).
#include "services/coordinator/admin_replies.h"

#include "proto/admin.capnp.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/admin_reply.h"
#include "services/cluster/envelope.h"

namespace sy::coordinator {
namespace {

proto::coordinator::Role ToProtoRole(NodeRole role) {
  return role == NodeRole::kHost ? proto::coordinator::Role::EXPERT_HOST : proto::coordinator::Role::TRAINER;
}

proto::admin::AdminReply::Builder InitReply(capnp::MallocMessageBuilder& b, uint64_t epoch) {
  return cluster::InitBody<proto::admin::AdminReply>(b, proto::MessageKind::ADMIN, epoch);
}

}  // namespace

void ReplyStatus(const StatusSnapshot& s, transport::Responder& responder) {
  capnp::MallocMessageBuilder b;
  auto status = InitReply(b, s.epoch).initStatus();
  status.setEpoch(s.epoch);
  status.setStep(s.step);
  status.setHostsAlive(s.hosts_alive);
  status.setHostsTotal(s.hosts_total);
  status.setTrainers(s.trainers);
  status.setLatestCheckpoint(s.checkpoints.latest_id);
  status.setLatestCheckpointStep(s.checkpoints.latest_step);
  status.setPhase(s.phase);
  status.setCheckpointInProgress(s.checkpoints.in_progress_id);
  status.setCheckpointInProgressStep(s.checkpoints.in_progress_step);
  status.setPlacementReady(s.placement_ready);
  status.setMaxOverMeanLoad(s.max_over_mean_load);
  status.setRecoveries(s.recoveries);
  status.setCheckpointsCommitted(s.checkpoints.committed);
  status.setMigrations(s.migrations);
  status.setReplications(s.replications);
  status.setInsecure(s.insecure);
  responder.Reply(b);
}

void ReplyNodes(const std::vector<NodeSnapshot>& nodes, uint64_t epoch, transport::Responder& responder) {
  capnp::MallocMessageBuilder b;
  auto list = InitReply(b, epoch).initHosts(static_cast<unsigned>(nodes.size()));
  for (size_t i = 0; i < nodes.size(); ++i) {
    const NodeInfo& n = nodes[i].node;
    auto h = list[static_cast<unsigned>(i)];
    h.setNodeId(n.id);
    h.setEndpoint(n.endpoint);
    h.setRole(ToProtoRole(n.role));
    h.setAlive(n.alive);
    h.setDraining(n.draining);
    h.setLastHeartbeatUnixMs(n.last_seen_unix_ms);
    h.setActorCount(nodes[i].actor_count);
    h.setLoad(nodes[i].load);
    h.setDevice(n.device);
    h.setStep(n.step);
    h.setMemoryBytes(n.memory_bytes);
  }
  cluster::ReplyAdmin(b, responder);
}

void ReplyExperts(const std::vector<ExpertSnapshot>& experts, uint64_t epoch, transport::Responder& responder) {
  capnp::MallocMessageBuilder b;
  auto list = InitReply(b, epoch).initExperts(static_cast<unsigned>(experts.size()));
  for (size_t i = 0; i < experts.size(); ++i) {
    const ExpertSnapshot& expert = experts[i];
    auto e = list[static_cast<unsigned>(i)];
    e.initExpert().setSwitchLayer(expert.expert.switch_layer);
    e.getExpert().setExpert(expert.expert.expert);
    auto out = e.initHosts(static_cast<unsigned>(expert.hosts.size()));
    for (unsigned h = 0; h < expert.hosts.size(); ++h) out.set(h, expert.hosts[h]);
    if (expert.last_step) {
      e.setTokensLastStep(expert.last_step->tokens);
      e.setDroppedLastStep(expert.last_step->dropped);
    }
    e.setLoad(expert.load);
  }
  cluster::ReplyAdmin(b, responder);
}

void ReplyHostLoadSeries(const std::map<uint64_t, StepHostLoad>& series, uint64_t epoch,
                         transport::Responder& responder) {
  capnp::MallocMessageBuilder b;
  auto list = InitReply(b, epoch).initHostLoadSeries(static_cast<unsigned>(series.size()));
  unsigned i = 0;
  for (const auto& [step, load] : series) {
    auto out = list[i++];
    out.setStep(step);
    out.setEpoch(load.epoch);
    auto hosts = out.initHosts(static_cast<unsigned>(load.tokens.size()));
    auto tokens = out.initTokens(static_cast<unsigned>(load.tokens.size()));
    unsigned h = 0;
    for (const auto& [host, t] : load.tokens) {
      hosts.set(h, host);
      tokens.set(h++, t);
    }
    out.setMaxOverMean(MaxOverMean(load.tokens));
  }
  cluster::ReplyAdmin(b, responder);
}

void ReplyCheckpointList(const std::vector<CheckpointInfo>& checkpoints, transport::Responder& responder) {
  capnp::MallocMessageBuilder b;
  auto out = InitReply(b, 0).initCheckpoints(static_cast<unsigned>(checkpoints.size()));
  for (size_t i = 0; i < checkpoints.size(); ++i) InfoToProto(checkpoints[i], out[static_cast<unsigned>(i)]);
  cluster::ReplyAdmin(b, responder);
}

void ReplyRebalance(const RebalancePlan& plan, bool applied, uint64_t epoch, transport::Responder& responder) {
  capnp::MallocMessageBuilder b;
  auto result = InitReply(b, epoch).initRebalance();
  auto moves = result.initMoves(static_cast<unsigned>(plan.moves.size()));
  for (size_t i = 0; i < plan.moves.size(); ++i) {
    auto move = moves[static_cast<unsigned>(i)];
    plan.moves[i].actor.ToProto(move.initActor());
    move.setFromHost(plan.moves[i].from);
    move.setToHost(plan.moves[i].to);
    move.setReplicate(plan.moves[i].replicate);
  }
  result.setMaxOverMeanBefore(plan.max_over_mean_before);
  result.setMaxOverMeanAfter(plan.max_over_mean_after);
  result.setApplied(applied);
  result.setEpoch(epoch);
  cluster::ReplyAdmin(b, responder);
}

void ReplyCheckpointId(uint64_t id, uint64_t epoch, transport::Responder& responder) {
  capnp::MallocMessageBuilder b;
  InitReply(b, epoch).setCheckpointId(id);
  responder.Reply(b);
}

void ReplyDone(uint64_t epoch, transport::Responder& responder) {
  capnp::MallocMessageBuilder b;
  InitReply(b, epoch).setDone();
  responder.Reply(b);
}

}  // namespace sy::coordinator
