// Placement tables applied on an expert host (see placement_actor.h).
#include "services/expert_host/placement_actor.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "proto/coordinator.capnp.h"
#include "services/expert_host/host_metrics.h"
#include "services/expert_host/host_reply.h"
#include "services/expert_host/request_door.h"

namespace sy::expert_host {

PlacementActor::PlacementActor(actor::Executor& executor, std::string self, const ActorFactory* factory,
                               HeldActors* held, std::shared_ptr<StepActor> step, ReplicaLinks* replicas,
                               metrics::Registry* registry)
    : Actor(executor, "placement", registry),
      self_(std::move(self)),
      factory_(factory),
      held_(held),
      step_(std::move(step)),
      replicas_(replicas),
      registry_(registry) {
  Become("serving", [this](PlacementActorMsg& msg) {
    if (auto* m = std::get_if<PlaceMsg>(&msg)) {
      OnPlace(*m);
    } else if (auto* m = std::get_if<WithActorMsg>(&msg)) {
      m->then(held_->Held(m->key));
    }
  });
}

void PlacementActor::OnPlace(PlaceMsg& m) {
  if (absl::Status s = Apply(m); !s.ok()) {
    SY_LOG(WARNING) << "placement epoch " << m.epoch << " refused: " << s;
    FailAndCount(registry_, m.responder, s);
    return;
  }
  ReplyWith<proto::coordinator::PlacementReply>(m.responder, proto::MessageKind::PLACEMENT,
                                                [&](auto reply) { reply.setEpoch(m.epoch); });
}

absl::Status PlacementActor::Apply(const PlaceMsg& m) {
  const uint64_t current = held_->epoch();
  if (m.epoch < current) return StaleEpochError(m.epoch, current);
  std::set<cluster::ActorKey> wanted;
  for (const auto& [key, peers] : m.mine) wanted.insert(key);
  const std::vector<cluster::ActorKey> added = held_->Missing(wanted);
  // Build every new actor before changing anything: a failure leaves the host as it was.
  std::map<cluster::ActorKey, std::shared_ptr<ParamActor>> built;
  for (const cluster::ActorKey& key : added) {
    absl::StatusOr<std::shared_ptr<ParamActor>> actor = factory_->Build(key, /*awaiting_restore=*/true);
    if (!actor.ok()) return actor.status();
    built[key] = *std::move(actor);
  }
  const auto removed = held_->Replace(m.epoch, wanted, std::move(built));
  TellReplicas(m);
  step_->Tell(SetActorsMsg{held_->All()});
  for (const auto& [key, actor] : removed) {
    actor->Tell(RemovedMsg{absl::StrCat(key.ToString(), " is no longer placed on ", self_, " (placement epoch ",
                                        m.epoch, ")")});
  }
  if (!added.empty() || !removed.empty()) {
    SY_LOG(INFO) << "placement epoch " << m.epoch << ": " << added.size()
                 << " actors added (waiting for a restore), " << removed.size() << " removed";
  }
  return absl::OkStatus();
}

void PlacementActor::TellReplicas(const PlaceMsg& m) {
  for (const auto& [key, peers] : m.mine) {
    for (const std::string& peer : peers) replicas_->Connect(peer, m.endpoints.at(peer));
    auto known = replica_peers_.find(key);
    if (known != replica_peers_.end() ? known->second == peers : peers.empty()) continue;
    absl::StatusOr<std::shared_ptr<ParamActor>> actor = held_->Held(key);
    if (!actor.ok()) continue;
    if (!peers.empty()) {
      SY_LOG(INFO) << key.ToString() << " is replicated: its gradient contributions are exchanged with "
                   << absl::StrJoin(peers, ", ");
    }
    (*actor)->Tell(ReplicasMsg{peers, [replicas = replicas_, held = held_, key = key](
                                          const std::string& peer, uint64_t step,
                                          const std::vector<uint32_t>& micro_batches,
                                          const std::vector<std::vector<float>>& grads) {
                                 replicas->Send(key, peer, step, held->epoch(), micro_batches, grads);
                               }});
  }
  for (auto it = replica_peers_.begin(); it != replica_peers_.end();) {
    it = m.mine.count(it->first) == 0 ? replica_peers_.erase(it) : std::next(it);
  }
  for (const auto& [key, peers] : m.mine) replica_peers_[key] = peers;
}

}  // namespace sy::expert_host
