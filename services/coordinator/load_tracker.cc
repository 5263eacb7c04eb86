// Moving per-expert load from per-step reports (see load_tracker.h).
#include "services/coordinator/load_tracker.h"

namespace sy::coordinator {

void LoadTracker::Report(const std::string& trainer, uint64_t step, const std::vector<ExpertTokens>& loads,
                         size_t expected_reporters) {
  if ((folded_any_ && step <= last_folded_step_) || (pending_any_ && step < pending_step_)) {
    ++late_reports_;
    return;
  }
  if (pending_any_ && step > pending_step_) Fold();
  if (!pending_any_) {
    pending_any_ = true;
    pending_step_ = step;
  }
  if (!pending_reporters_.insert(trainer).second) {
    ++late_reports_;  // the same trainer twice for one step: keep the first
    return;
  }
  for (const ExpertTokens& l : loads) {
    ExpertTokens& sum = pending_[l.expert];
    sum.expert = l.expert;
    sum.tokens += l.tokens;
    sum.dropped += l.dropped;
  }
  if (pending_reporters_.size() >= expected_reporters) Fold();
}

void LoadTracker::Fold() {
  if (!pending_any_) return;
  // Experts known before but silent this step had zero tokens.
  for (auto& [expert, load] : ema_) {
    if (pending_.count(expert) == 0) load = (1 - alpha_) * load;
  }
  for (const auto& [expert, sum] : pending_) {
    auto it = ema_.find(expert);
    const double tokens = static_cast<double>(sum.tokens);
    if (!folded_any_) {
      ema_[expert] = tokens;
    } else if (it == ema_.end()) {
      ema_[expert] = alpha_ * tokens;  // it had no load before
    } else {
      it->second = alpha_ * tokens + (1 - alpha_) * it->second;
    }
  }
  last_ = std::move(pending_);
  pending_.clear();
  pending_reporters_.clear();
  last_folded_step_ = pending_step_;
  folded_any_ = true;
  pending_any_ = false;
}

double LoadTracker::ExpertLoad(const cluster::ActorKey& expert) const {
  auto it = ema_.find(expert);
  return it == ema_.end() ? 0.0 : it->second;
}

std::map<std::string, double> LoadTracker::HostLoads(const cluster::PlacementTable& table) const {
  std::map<std::string, double> loads;
  for (const std::string& h : table.hosts()) loads[h] = 0;
  for (const auto& [actor, replicas] : table.entries()) {
    const double share = ExpertLoad(actor) / static_cast<double>(replicas.size());
    for (const std::string& h : replicas) loads[h] += share;
  }
  return loads;
}

}  // namespace sy::coordinator
