// The ClusterActor's orders to the trainers: roll back to a restored checkpoint's
// step (the live trainers, in rank order, split the micro-batches), or stop when the
// run cannot go on (see cluster_actor.h).
#include <algorithm>

#include "absl/time/clock.h"
#include "common/log/log.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "services/coordinator/cluster_actor.h"

namespace sy::coordinator {

void ClusterActor::StopTrainers(const std::string& reason) {
  for (const NodeInfo& trainer : membership_.Nodes(NodeRole::kTrainer)) {
    if (!trainer.alive) continue;
    capnp::MallocMessageBuilder b;
    auto req = cluster::InitBody<proto::coordinator::TrainerControlRequest>(b, proto::MessageKind::TRAINER_CONTROL, table_.epoch());
    req.setEpoch(table_.epoch());
    req.setStop();
    req.setReason(reason);
    rpc_->CallAsync(AddressOf(trainer.id), b, {}, absl::Now() + options_.call_timeout,
                    [id = trainer.id](absl::StatusOr<transport::DecodedMessage> reply) {
                      if (!reply.ok()) SY_LOG(WARNING) << "stop of trainer " << id << ": " << reply.status();
                    });
  }
}

void ClusterActor::RollbackTrainers(uint64_t step, uint64_t checkpoint_id) {
  std::vector<std::string> alive;  // the live trainers, in rank order: they split the micro-batches
  for (const NodeInfo& trainer : membership_.Nodes(NodeRole::kTrainer)) {
    if (trainer.alive) alive.push_back(trainer.id);
  }
  for (auto it = trainers_awaiting_rollback_.begin(); it != trainers_awaiting_rollback_.end();) {
    // One that left meanwhile gets no order: nothing to wait for.
    it = std::find(alive.begin(), alive.end(), *it) == alive.end() ? trainers_awaiting_rollback_.erase(it) : ++it;
  }
  for (const std::string& trainer : alive) {
    capnp::MallocMessageBuilder b;
    auto req = cluster::InitBody<proto::coordinator::TrainerControlRequest>(b, proto::MessageKind::TRAINER_CONTROL, table_.epoch());
    req.setEpoch(table_.epoch());
    auto rollback = req.initRollback();
    rollback.setStep(step);
    rollback.setCheckpointId(checkpoint_id);
    rollback.setFailedAtUnixMs(failure_detected_unix_ms_);
    auto ids = rollback.initTrainers(static_cast<unsigned>(alive.size()));
    for (size_t i = 0; i < alive.size(); ++i) ids.set(static_cast<unsigned>(i), alive[i]);
    std::weak_ptr<ClusterActor> self = std::static_pointer_cast<ClusterActor>(shared_from_this());
    rpc_->CallAsync(AddressOf(trainer), b, {}, absl::Now() + options_.call_timeout,
                    [id = trainer, self, generation = restore_generation_](
                        absl::StatusOr<transport::DecodedMessage> reply) {
                      if (!reply.ok()) SY_LOG(WARNING) << "rollback of trainer " << id << ": " << reply.status();
                      if (auto actor = self.lock()) actor->Tell(RollbackAcked{id, generation});
                    });
  }
}

}  // namespace sy::coordinator
