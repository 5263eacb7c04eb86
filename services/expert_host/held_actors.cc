// The actors an expert host holds (see held_actors.h).
#include "services/expert_host/held_actors.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace sy::expert_host {

HeldActors::HeldActors(const ModelActors* model, int host_index) : model_(model), host_index_(host_index) {}

absl::Status HeldActors::NotHere(const std::string& what, int static_host) const {
  return absl::NotFoundError(absl::StrCat(what, " is not on host ", host_index_,
                                          epoch_ > 0 ? absl::StrCat(" in placement epoch ", epoch_)
                                                     : absl::StrCat(" (it lives on host ", static_host, ")")));
}

absl::StatusOr<std::shared_ptr<ParamActor>> HeldActors::Expert(uint32_t layer, uint32_t expert) const {
  const std::optional<cluster::ActorKey> key = model_->ExpertKey(layer, expert);
  if (!key.has_value()) {
    return absl::NotFoundError(absl::StrCat("unknown expert (layer ", layer, ", expert ", expert, ")"));
  }
  absl::MutexLock lock(&mu_);
  auto it = actors_.find(*key);
  if (it != actors_.end()) return it->second;
  return NotHere(absl::StrCat("expert (layer ", layer, ", expert ", expert, ")"),
                 model_->static_placement().HostOfExpert(static_cast<int>(layer), static_cast<int>(expert)));
}

absl::StatusOr<std::shared_ptr<ParamActor>> HeldActors::Shard(uint32_t shard) const {
  if (shard >= model_->num_shards()) return absl::NotFoundError(absl::StrCat("unknown dense shard ", shard));
  absl::MutexLock lock(&mu_);
  auto it = actors_.find(cluster::ActorKey::Dense(shard));
  if (it != actors_.end()) return it->second;
  return NotHere(absl::StrCat("dense shard ", shard),
                 model_->static_placement().HostOfDenseShard(static_cast<int>(shard)));
}

absl::StatusOr<std::shared_ptr<ParamActor>> HeldActors::Held(const cluster::ActorKey& key) const {
  if (absl::Status s = model_->CheckKey(key); !s.ok()) return absl::NotFoundError(s.message());
  absl::MutexLock lock(&mu_);
  auto it = actors_.find(key);
  if (it != actors_.end()) return it->second;
  return absl::NotFoundError(
      absl::StrCat(key.ToString(), " is not on host ", host_index_, " in placement epoch ", epoch_));
}

uint64_t HeldActors::epoch() const {
  absl::MutexLock lock(&mu_);
  return epoch_;
}

absl::Status HeldActors::CheckNoneAwaitingRestore(uint64_t step) const {
  absl::MutexLock lock(&mu_);
  if (awaiting_restore_.empty()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("step ", step, ": ", awaiting_restore_.size(),
                                             " actor(s) placed on this host are being restored (first: ",
                                             awaiting_restore_.begin()->ToString(), ")"));
}

void HeldActors::MarkRestored(const cluster::ActorKey& key, const std::shared_ptr<ParamActor>& actor) {
  absl::MutexLock lock(&mu_);
  auto it = actors_.find(key);
  if (it != actors_.end() && it->second == actor) awaiting_restore_.erase(key);
}

void HeldActors::SetLiveGrace(LiveGrace grace) {
  absl::MutexLock lock(&mu_);
  live_grace_ = grace;
}

HeldActors::LiveGrace HeldActors::live_grace() const {
  absl::MutexLock lock(&mu_);
  return live_grace_;
}

void HeldActors::Add(const cluster::ActorKey& key, std::shared_ptr<ParamActor> actor) {
  absl::MutexLock lock(&mu_);
  actors_[key] = std::move(actor);
}

std::vector<cluster::ActorKey> HeldActors::Missing(const std::set<cluster::ActorKey>& wanted) const {
  absl::MutexLock lock(&mu_);
  std::vector<cluster::ActorKey> missing;
  for (const cluster::ActorKey& key : wanted) {
    if (actors_.count(key) == 0) missing.push_back(key);
  }
  return missing;
}

std::vector<std::pair<cluster::ActorKey, std::shared_ptr<ParamActor>>> HeldActors::Replace(
    uint64_t epoch, const std::set<cluster::ActorKey>& wanted,
    std::map<cluster::ActorKey, std::shared_ptr<ParamActor>> added) {
  std::vector<std::pair<cluster::ActorKey, std::shared_ptr<ParamActor>>> removed;
  absl::MutexLock lock(&mu_);
  for (auto it = actors_.begin(); it != actors_.end();) {
    if (wanted.count(it->first) != 0) {
      ++it;
      continue;
    }
    removed.emplace_back(it->first, std::move(it->second));
    awaiting_restore_.erase(it->first);
    it = actors_.erase(it);
  }
  for (auto& [key, actor] : added) {
    actors_[key] = std::move(actor);
    awaiting_restore_.insert(key);
  }
  epoch_ = epoch;
  live_grace_ = LiveGrace();
  return removed;
}

void HeldActors::Clear() {
  absl::MutexLock lock(&mu_);
  actors_.clear();
  awaiting_restore_.clear();
}

std::vector<std::shared_ptr<ParamActor>> HeldActors::All() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<ParamActor>> all;
  for (const auto& [key, actor] : actors_) all.push_back(actor);
  return all;
}

std::vector<cluster::ActorKey> HeldActors::Keys() const {
  absl::MutexLock lock(&mu_);
  std::vector<cluster::ActorKey> keys;
  for (const auto& [key, actor] : actors_) keys.push_back(key);
  return keys;
}

size_t HeldActors::num_experts() const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [key, actor] : actors_) n += key.dense ? 0 : 1;
  return n;
}

size_t HeldActors::num_shards() const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [key, actor] : actors_) n += key.dense ? 1 : 0;
  return n;
}

size_t HeldActors::num_awaiting_restore() const {
  absl::MutexLock lock(&mu_);
  return awaiting_restore_.size();
}

}  // namespace sy::expert_host
