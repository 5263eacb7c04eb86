// Placement tables applied on an expert host (see placement_actor.h).
#include "services/expert_host/placement_actor.h"

#include <signal.h>

#include <algorithm>
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
namespace {

// Chunks of a live move's state: small enough not to hold up other traffic on the link.
constexpr uint64_t kLiveChunkBytes = 1 << 20;

}  // namespace

PlacementActor::PlacementActor(actor::Executor& executor, std::string self, const ActorFactory* factory,
                               HeldActors* held, std::shared_ptr<StepActor> step, ReplicaLinks* replicas,
                               LiveArrivals* arriving, metrics::Registry* registry, bool die_moving_out)
    : Actor(executor, "placement", registry),
      self_(std::move(self)),
      factory_(factory),
      held_(held),
      step_(std::move(step)),
      replicas_(replicas),
      arriving_(arriving),
      registry_(registry),
      die_moving_out_(die_moving_out) {
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
  auto reply = [responder = m.responder, epoch = m.epoch](uint64_t version) mutable {
    ReplyWith<proto::coordinator::PlacementReply>(responder, proto::MessageKind::PLACEMENT, [&](auto r) {
      r.setEpoch(epoch);
      r.setVersion(version);
    });
  };
  if (m.drop_open_step && m.epoch > dropped_at_epoch_) {
    dropped_at_epoch_ = m.epoch;  // the same table again (a resend) drops nothing more
    SY_LOG(WARNING) << "placement epoch " << m.epoch << " fails over a dead host: dropping the open step";
    step_->Tell(DropOpenStepMsg{std::move(reply)});
    return;
  }
  reply(step_->applied_version());
}

absl::Status PlacementActor::Apply(const PlaceMsg& m) {
  const uint64_t current = held_->epoch();
  if (m.epoch < current) return StaleEpochError(m.epoch, current);
  std::set<cluster::ActorKey> wanted, leaving;
  for (const auto& [key, peers] : m.mine) wanted.insert(key);
  for (const cluster::LiveMove& live : m.live) {
    if (live.move.from == self_ && !live.move.replicate) leaving.insert(live.move.actor);
  }
  wanted.insert(leaving.begin(), leaving.end());  // served here up to the move's last step
  std::vector<cluster::ActorKey> added = held_->Missing(wanted);
  // Before its first table a host holds its static share at the initial state: an actor
  // of that share moving here live (a join) is rebuilt to wait for the state it brings.
  for (const cluster::LiveMove& live : m.live) {
    const cluster::ActorKey& key = live.move.actor;
    if (current == 0 && live.move.to == self_ && held_->Held(key).ok() &&
        std::find(added.begin(), added.end(), key) == added.end()) {
      added.push_back(key);
    }
  }
  // Build every new actor before changing anything: a failure leaves the host as it was.
  // The cluster's first table, before any step, places actors at their initial state
  // (the same on every host, from the seed: e.g. the second holders of --redundancy 2);
  // later ones wait for a restore or a live move.
  const bool initial = m.initial && current == 0 && step_->applied_version() == 0 && m.live_after == 0;
  std::map<cluster::ActorKey, std::shared_ptr<ParamActor>> built;
  for (const cluster::ActorKey& key : added) {
    absl::StatusOr<std::shared_ptr<ParamActor>> actor = factory_->Build(key, /*awaiting_restore=*/!initial);
    if (!actor.ok()) return actor.status();
    built[key] = *std::move(actor);
  }
  if (m.live_after == 0) arriving_->ForgetAll();  // a table without live moves: none comes any more
  size_t arriving = 0;
  for (const cluster::LiveMove& live : m.live) {
    auto actor = built.find(live.move.actor);
    if (live.move.to != self_ || actor == built.end()) continue;
    actor->second->Tell(ExpectLiveMsg{m.live_after});
    arriving_->Expect(live.move.actor, live.move.from, m.live_after);
    ++arriving;
  }
  const HeldActors::LiveGrace grace = held_->live_grace();
  const auto removed = held_->Replace(m.epoch, wanted, std::move(built));
  for (const cluster::LiveMove& live : m.live) {
    // A live arrival waits for its state itself (requests parked): the host's steps go on.
    if (live.move.to == self_) held_->MarkRestored(live.move.actor, held_->Held(live.move.actor).value_or(nullptr));
  }
  if (initial) {  // at their initial state: nothing to restore
    for (const cluster::ActorKey& key : added) held_->MarkRestored(key, held_->Held(key).value_or(nullptr));
  }
  // The same table again (pushed, and fetched by the link) keeps the grace it started.
  if (m.live_after > 0) held_->SetLiveGrace(m.epoch > current ? HeldActors::LiveGrace{current, m.live_after} : grace);
  TellReplicas(m);
  std::vector<std::shared_ptr<ParamActor>> stepping;  // the actors of the steps after the boundary
  for (const cluster::ActorKey& key : held_->Keys()) {
    if (leaving.count(key) != 0) continue;
    if (absl::StatusOr<std::shared_ptr<ParamActor>> actor = held_->Held(key); actor.ok()) stepping.push_back(*actor);
  }
  // A host that took part in no step yet (no table before, or none placing anything
  // here) joins at the live moves' version.
  const bool catch_up = m.live_after > 0 && (current == 0 || stepped_nothing_);
  stepped_nothing_ = stepping.empty();
  step_->Tell(SetActorsMsg{std::move(stepping), m.live_after, catch_up});
  if (m.epoch > current) StartMovesOut(m);  // once per table
  for (const auto& [key, actor] : removed) {
    arriving_->Forget(key);
    actor->Tell(RemovedMsg{absl::StrCat(key.ToString(), " is no longer placed on ", self_, " (placement epoch ",
                                        m.epoch, ")")});
  }
  if (arriving > 0 || !leaving.empty()) {
    SY_LOG(INFO) << "placement epoch " << m.epoch << ": " << arriving << " actors move here live and "
                 << leaving.size() << " leave live after step " << m.live_after << " (" << added.size() - arriving
                 << " added waiting for a restore, " << removed.size() << " removed)";
  } else if (!added.empty() || !removed.empty()) {
    SY_LOG(INFO) << "placement epoch " << m.epoch << ": " << added.size() << " actors added ("
                 << (initial ? "the first placement: from their initial state" : "waiting for a restore")
                 << "), " << removed.size() << " removed";
  }
  return absl::OkStatus();
}

void PlacementActor::StartMovesOut(const PlaceMsg& m) {
  for (const cluster::LiveMove& live : m.live) {
    if (live.move.from != self_) continue;
    absl::StatusOr<std::shared_ptr<ParamActor>> actor = held_->Held(live.move.actor);
    if (!actor.ok()) continue;
    replicas_->Connect(live.move.to, m.endpoints.at(live.move.to));
    MoveOutMsg out;
    out.version = m.live_after;
    out.epoch = m.epoch;
    out.keep = live.move.replicate;
    out.done = [replicas = replicas_, live, version = m.live_after,
                die = die_moving_out_](absl::StatusOr<std::string> state) {
      if (!state.ok()) {
        SY_LOG(ERROR) << "live move of " << live.move.actor.ToString() << " to " << live.move.to << ": " << state.status();
        return;
      }
      if (die) raise(SIGKILL);  // fault injection: dead with the state in hand
      replicas->SendState(live.move.actor, live.move.to, version, std::make_shared<const std::string>(*std::move(state)),
                          kLiveChunkBytes, [live, version](absl::Status s) {
                            if (!s.ok()) {
                              SY_LOG(ERROR) << "live move of " << live.move.actor.ToString() << " to " << live.move.to
                                            << " failed: " << s;
                              return;
                            }
                            SY_LOG(INFO) << live.move.actor.ToString() << " moved live to " << live.move.to
                                         << " at version " << version;
                          });
    };
    (*actor)->Tell(std::move(out));
  }
}

ReplicasMsg PlacementActor::ReplicasOf(const cluster::ActorKey& key, const std::vector<std::string>& peers) {
  return ReplicasMsg{peers, [replicas = replicas_, held = held_, key](
                                const std::string& peer, uint64_t step,
                                const std::vector<cluster::MicroBatchSpan>& micro_batches,
                                const std::vector<std::vector<float>>& grads, proto::DType dtype) {
                       replicas->Send(key, peer, step, held->epoch(), micro_batches, grads, dtype);
                     }};
}

void PlacementActor::TellReplicas(const PlaceMsg& m) {
  for (const auto& [key, peers] : m.mine) {
    for (const std::string& peer : peers) replicas_->Connect(peer, m.endpoints.at(peer));
    auto known = replica_peers_.find(key);
    if (known != replica_peers_.end() ? known->second == peers : peers.empty()) continue;
    absl::StatusOr<std::shared_ptr<ParamActor>> actor = held_->Held(key);
    if (!actor.ok()) continue;
    if (!peers.empty()) {
      SY_LOG(INFO) << key.ToString() << " is replicated"
                   << (m.live_after > 0 ? absl::StrCat(" from step ", m.live_after + 1) : std::string())
                   << ": its gradient contributions are exchanged with " << absl::StrJoin(peers, ", ");
    }
    // Live moves: the peers change at their boundary, like the placement.
    ReplicasMsg replicas = ReplicasOf(key, peers);
    replicas.after_version = m.live_after;
    (*actor)->Tell(std::move(replicas));
  }
  for (auto it = replica_peers_.begin(); it != replica_peers_.end();) {
    it = m.mine.count(it->first) == 0 ? replica_peers_.erase(it) : std::next(it);
  }
  for (const auto& [key, peers] : m.mine) replica_peers_[key] = peers;
}

}  // namespace sy::expert_host
