// Per-step host load with the table of the time (see host_load_series.h).
#include "services/coordinator/host_load_series.h"

namespace sy::coordinator {

void HostLoadSeries::Report(const std::string& trainer, uint64_t step, const std::vector<ExpertTokens>& loads,
                            const cluster::PlacementTable& table) {
  if (!table.initialized()) return;  // no host serves anything yet
  auto [it, fresh] = steps_.try_emplace(step);
  StepHostLoad& entry = it->second;
  if (!fresh && entry.epoch != table.epoch()) entry = StepHostLoad{};  // replayed: the replay counts
  if (entry.reporters.empty()) {
    entry.epoch = table.epoch();
    for (const std::string& h : table.hosts()) entry.tokens[h] = 0;
  }
  if (!entry.reporters.insert(trainer).second) return;  // counted already
  for (const ExpertTokens& l : loads) {
    const std::vector<std::string> hosts = table.HostsOf(l.expert);
    for (const std::string& h : hosts) {
      entry.tokens[h] += static_cast<double>(l.tokens) / static_cast<double>(hosts.size());
    }
  }
  while (steps_.size() > max_steps_) steps_.erase(steps_.begin());
}

}  // namespace sy::coordinator
