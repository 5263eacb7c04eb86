// The actors an expert host holds now, by coordinator key, and the placement epoch
// they belong to: the static share at start, then what the coordinator's tables place
// here. An actor placed at runtime waits for a checkpoint restore (while any waits,
// the step protocol is refused). Lookups by what requests name (a model layer's
// expert, a dense shard, a key) say why an actor is not here (NotFound). Thread-safe:
// the door looks actors up on any thread while the placement actor replaces the set.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/cluster/actor_key.h"
#include "services/expert_host/model_actors.h"
#include "services/expert_host/param_actor.h"

namespace sy::expert_host {

class HeldActors {
 public:
  // `model` must outlive this; `host_index` names this host in NotFound messages.
  HeldActors(const ModelActors* model, int host_index);

  // The actor of model layer `layer`'s expert, of dense shard `shard`, of `key`.
  absl::StatusOr<std::shared_ptr<ParamActor>> Expert(uint32_t layer, uint32_t expert) const;
  absl::StatusOr<std::shared_ptr<ParamActor>> Shard(uint32_t shard) const;
  absl::StatusOr<std::shared_ptr<ParamActor>> Held(const cluster::ActorKey& key) const;

  // Placement epoch of the last coordinator table accepted (0: none).
  uint64_t epoch() const;
  // Unavailable (naming `step`) while an actor placed here waits for its restore.
  absl::Status CheckNoneAwaitingRestore(uint64_t step) const;
  // `actor`, restored, serves: it no longer waits (unless `key` was placed anew since).
  void MarkRestored(const cluster::ActorKey& key, const std::shared_ptr<ParamActor>& actor);

  // Adds an actor that serves at once (the static share at start).
  void Add(const cluster::ActorKey& key, std::shared_ptr<ParamActor> actor);
  // The keys of `wanted` not held now.
  std::vector<cluster::ActorKey> Missing(const std::set<cluster::ActorKey>& wanted) const;
  // Accepts placement `epoch`: the held set becomes `wanted`; `added` (built, waiting
  // for a restore) join it and every other actor outside `wanted` leaves. Returns the
  // actors that left.
  std::vector<std::pair<cluster::ActorKey, std::shared_ptr<ParamActor>>> Replace(
      uint64_t epoch, const std::set<cluster::ActorKey>& wanted,
      std::map<cluster::ActorKey, std::shared_ptr<ParamActor>> added);
  // A table that moves actors live (accepted by the last Replace) keeps requests of
  // epochs from `previous_epoch` on valid until the host applied step `last_step`
  // (the moves' last step on their old hosts). A later Replace ends it.
  struct LiveGrace {
    uint64_t previous_epoch = 0;
    uint64_t last_step = 0;
  };
  void SetLiveGrace(LiveGrace grace);
  // The grace of the current table (none: last_step 0).
  LiveGrace live_grace() const;

  // Drops every actor (shutdown).
  void Clear();

  // Every actor held, in key order, and their keys.
  std::vector<std::shared_ptr<ParamActor>> All() const;
  std::vector<cluster::ActorKey> Keys() const;
  size_t num_experts() const;
  size_t num_shards() const;
  size_t num_awaiting_restore() const;

 private:
  // NotFound for an actor of the model this host does not hold, named `what`: with the
  // placement epoch, or before any table with where the static placement puts it.
  absl::Status NotHere(const std::string& what, int static_host) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const ModelActors* model_;
  const int host_index_;
  mutable absl::Mutex mu_;
  std::map<cluster::ActorKey, std::shared_ptr<ParamActor>> actors_ ABSL_GUARDED_BY(mu_);
  std::set<cluster::ActorKey> awaiting_restore_ ABSL_GUARDED_BY(mu_);
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  LiveGrace live_grace_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sy::expert_host
