// HostLoadSeries: every step's tokens per host, counted with the placement table in
// force when the step's load reports arrived, so a run's host balance can be read
// per step window even after actors moved (summing per-expert tokens over a window
// with the final table would credit old steps to the new placement).
//
// Reports of one step from several trainers add up. A step reported again under a
// newer table epoch (a replay after a rollback or a move) starts over: the replay's
// count replaces the abandoned one. A trainer reporting a step twice under one epoch
// is counted once. The oldest steps are dropped past `max_steps`.
//
// Not thread-safe: owned by the coordinator's state actor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "services/cluster/placement_table.h"
#include "services/coordinator/load_tracker.h"

namespace sy::coordinator {

struct StepHostLoad {
  uint64_t epoch = 0;                     // table epoch the reports were counted with
  std::map<std::string, double> tokens;  // every host of that table -> tokens of its experts
  std::set<std::string> reporters;       // trainers counted
};

class HostLoadSeries {
 public:
  explicit HostLoadSeries(size_t max_steps = 100000) : max_steps_(max_steps) {}

  void Report(const std::string& trainer, uint64_t step, const std::vector<ExpertTokens>& loads,
              const cluster::PlacementTable& table);

  const std::map<uint64_t, StepHostLoad>& steps() const { return steps_; }

 private:
  size_t max_steps_;
  std::map<uint64_t, StepHostLoad> steps_;
};

}  // namespace sy::coordinator
