// rebalance_bench's runs and their step times (see rebalance_runs.h).
#include "tests/bench/cluster/rebalance_runs.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "orchestration/local/launcher_flags.h"
#include "orchestration/local/local_cluster.h"

namespace sy::bench {

absl::StatusOr<ClusterRun> RunCluster(std::vector<std::string> launcher_args, const std::string& dir,
                                      double tokens_per_step, const std::atomic<bool>& stop) {
  launcher_args.push_back("--workdir=" + dir);
  absl::StatusOr<local::LauncherOptions> options = local::ParseLauncherOptions(launcher_args);
  if (!options.ok()) return options.status();
  std::ostringstream log;
  if (absl::Status s = local::RunLocalCluster(*options, log, stop); !s.ok()) return s;
  absl::StatusOr<local::RunReport> report = local::ReadRunReport(dir);
  if (!report.ok()) return report.status();
  ClusterRun run;
  run.dir = dir;
  for (const local::StepRecord& r : report->steps) {
    if (r.tokens_per_s > 0) run.step_ms[r.step] = 1000.0 * tokens_per_step / r.tokens_per_s;
  }
  run.live_move_steps = LiveMoveSteps(dir);
  run.report = *std::move(report);
  return run;
}

std::vector<int64_t> LiveMoveSteps(const std::string& dir) {
  std::ifstream log(dir + "/coordinator.log");
  const std::string marker = "move live after step ";
  std::vector<int64_t> steps;
  for (std::string line; std::getline(log, line);) {
    const size_t at = line.find(marker);
    if (at == std::string::npos) continue;
    const size_t from = at + marker.size();
    int64_t step = 0;
    if (absl::SimpleAtoi(line.substr(from, line.find(' ', from) - from), &step)) steps.push_back(step + 1);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

double MedianStepMs(const ClusterRun& run, int64_t first, int64_t last) {
  std::vector<double> ms;
  for (auto it = run.step_ms.lower_bound(first); it != run.step_ms.end() && it->first <= last; ++it) {
    ms.push_back(it->second);
  }
  if (ms.empty()) return 0;
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

double LiveMoveCostSteps(const ClusterRun& run, double median_ms) {
  double cost = 0;
  for (int64_t carried : run.live_move_steps) {
    auto ms = run.step_ms.find(carried);
    if (ms == run.step_ms.end() || median_ms <= 0) continue;
    cost = std::max(cost, (ms->second - median_ms) / median_ms);
  }
  return cost;
}

}  // namespace sy::bench
