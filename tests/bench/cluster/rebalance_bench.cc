// rebalance_bench: what automatic hot-expert rebalancing buys under router skew. Runs the
// same skewed H hosts x 2 trainers training (--skew, a checkpoint every 10 steps) twice
// on this machine, with --auto_rebalance=false and with automatic rebalancing, and prints
// each run's median step time over the steps after the first rebalance point and the
// hottest host's CPU time per step (the hosts' work: each host process's user+system
// CPU seconds, replays included, over the steps), each as a ratio (rebalanced over
// fixed, measured in this run), the migrations and replicas, and the max/mean host
// load of the first and last 10 steps (counted by the coordinator with each step's
// placement), and the lines `ratio auto_vs_fixed_step_time X` and `ratio
// live_move_cost_steps Z` (the most extra wall time of a step that carried live moves, the
// step after their boundary, over the rebalanced run's median step time, in median step
// times; the boundaries are read from coordinator.log). By default 4 hosts and one
// Switch layer (the hot expert is replicated), each host emulating a device of
// kEmulatedGflops (sy-expert-host --emulate_device_gflops): on a machine with fewer
// cores than processes the step time would barely move otherwise (every process shares
// the same cores), while with emulation a bucket's reply waits its FLOPs / G, so the
// step time follows the hottest host's device, as on hosts with their own devices.
// No timed assertions: a report, like every tests/bench benchmark.
//
//   build/bin/rebalance_bench [--steps=60] [--hosts=4] [--data=FILE] [--workdir=DIR] [model/training flags]
//   build/bin/rebalance_bench --hosts=2 --moe_every=1 --host_args=   # the 2-host cluster, no emulation
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "orchestration/local/launcher_flags.h"
#include "orchestration/local/local_cluster.h"
#include "orchestration/local/run_report.h"
#include "services/cluster/model_flags.h"
#include "tests/bench/cluster/bench_args.h"
#include "tests/bench/cluster/recovery_cases.h"

namespace {

constexpr int64_t kFirstRebalanceStep = 10;  // the first checkpoint: where a rebalance can happen
// The emulated device of every host: slow enough that the hot expert's buckets of the tiny
// model (about 100 rows of d_model 32, d_ff 64: 0.8 MFLOP forward) take milliseconds, far
// more than their real computation.
constexpr double kEmulatedGflops = 0.2;

struct Measured {
  double median_step_ms = 0;  // over steps after kFirstRebalanceStep (replays included once: the kept records)
  double live_move_cost_steps = 0;  // the costliest step carrying live moves: (its ms - median) / median
  double hottest_host_cpu_ms_per_step = 0;
  std::optional<sy::local::ClusterRecord> cluster;  // what the coordinator saw, from summary.json
};

// The steps that carried live moves in the run in `dir`: the step after each boundary the
// coordinator logged ("... move live after step S").
std::vector<int64_t> LiveMoveSteps(const std::string& dir) {
  std::ifstream log(dir + "/coordinator.log");
  const std::string marker = "move live after step ";
  std::vector<int64_t> steps;
  for (std::string line; std::getline(log, line);) {
    const size_t at = line.find(marker);
    int64_t step = 0;
    if (at != std::string::npos && absl::SimpleAtoi(line.substr(at + marker.size(), line.find(' ', at + marker.size()) -
                                                                                     at - marker.size()),
                                                    &step)) {
      steps.push_back(step + 1);
    }
  }
  return steps;
}

// `value` of the run's cluster record as text ("?" without one).
std::string Field(const Measured& m, const std::function<std::string(const sy::local::ClusterRecord&)>& value) {
  return m.cluster ? value(*m.cluster) : "?";
}

}  // namespace

int main(int argc, char** argv) {
  // The cluster tests' tiny model at a learning rate that lets the skew, not early routing noise, set the load.
  const sy::bench::BenchArgs args = sy::bench::ParseBenchArgs(
      argc, argv,
      {"--steps=60", "--hosts=4", absl::StrCat("--workdir=/tmp/rebalance_bench_", getpid()), "--layers=2",
       "--d_model=32", "--heads=2", "--d_ff=64", "--experts=4", "--moe_every=2", "--context=32", "--micro_batch=4",
       "--micro_batches=4", "--warmup=5", "--lr=1e-3", "--eval_every=0", "--eval_batches=1", "--skew=30",
       absl::StrCat("--host_args=--emulate_device_gflops=", kEmulatedGflops)},
      /*takes_hosts=*/true,
      "usage: rebalance_bench [--steps=60] [--hosts=4] [--data=FILE] [--workdir=DIR] [model/training flags]");
  const std::string& data = args.data;
  const std::string& workdir = args.workdir;
  const int64_t steps = args.steps;
  const int hosts = args.hosts;
  const std::vector<std::string>& model_flags = args.model_flags;
  if (hosts < 2) {
    std::cerr << "rebalance_bench: --hosts must be at least 2 (nothing can move with one)\n";
    return 2;
  }
  if (steps <= kFirstRebalanceStep + 10) {
    std::cerr << "rebalance_bench: --steps must be above " << kFirstRebalanceStep + 10 << "\n";
    return 2;
  }
  absl::StatusOr<sy::cluster::TrainerOptions> model = sy::cluster::ParseModelFlags(model_flags);
  if (!model.ok()) {
    std::cerr << "rebalance_bench: " << model.status() << "\n";
    return 2;
  }
  const double tokens_per_step = static_cast<double>(model->micro_batch) * model->micro_batches * model->context;
  const std::vector<std::pair<std::string, std::string>> runs = {
      {"fixed placement", "--coordinator_args=--auto_rebalance=false"},
      {"auto rebalance", "--coordinator_args=--live_moves=true"}};
  std::vector<Measured> results;
  std::atomic<bool> stop{false};
  for (const auto& [name, coordinator_args] : runs) {
    const std::string dir = absl::StrCat(workdir, "/", name == "auto rebalance" ? "rebalanced" : "fixed");
    std::vector<std::string> args = {absl::StrCat("--hosts=", hosts), "--trainers=2", absl::StrCat("--steps=", steps), "--data=" + data,
                                     "--workdir=" + dir, "--checkpoint_every=10", "--timeout_s=600"};
    args.push_back(coordinator_args);
    args.insert(args.end(), model_flags.begin(), model_flags.end());
    absl::StatusOr<sy::local::LauncherOptions> options = sy::local::ParseLauncherOptions(args);
    if (!options.ok()) {
      std::cerr << "rebalance_bench: " << options.status() << "\n";
      return 2;
    }
    std::cerr << "rebalance_bench: running " << name << ", " << steps << " steps\n";
    std::ostringstream log;
    if (absl::Status s = sy::local::RunLocalCluster(*options, log, stop); !s.ok()) {
      std::cerr << "rebalance_bench: " << name << " failed: " << s << "\n";
      return 1;
    }
    absl::StatusOr<sy::local::RunReport> report = sy::local::ReadRunReport(dir);
    if (!report.ok()) {
      std::cerr << "rebalance_bench: " << report.status() << "\n";
      return 1;
    }
    std::vector<double> step_ms;
    std::map<int64_t, double> ms_of_step;
    for (const sy::local::StepRecord& r : report->steps) {
      if (r.tokens_per_s <= 0) continue;
      ms_of_step[r.step] = 1000.0 * tokens_per_step / r.tokens_per_s;
      if (r.step > kFirstRebalanceStep) step_ms.push_back(ms_of_step[r.step]);
    }
    Measured m;
    if (!step_ms.empty()) {
      std::nth_element(step_ms.begin(), step_ms.begin() + step_ms.size() / 2, step_ms.end());
      m.median_step_ms = step_ms[step_ms.size() / 2];
    }
    for (int64_t carried : LiveMoveSteps(dir)) {
      auto ms = ms_of_step.find(carried);
      if (ms == ms_of_step.end() || m.median_step_ms <= 0) continue;
      m.live_move_cost_steps = std::max(m.live_move_cost_steps, (ms->second - m.median_step_ms) / m.median_step_ms);
    }
    m.cluster = report->cluster;
    if (m.cluster) {
      for (const auto& [host, seconds] : m.cluster->host_cpu_seconds) {
        m.hottest_host_cpu_ms_per_step = std::max(m.hottest_host_cpu_ms_per_step, 1000.0 * seconds / steps);
      }
    }
    results.push_back(m);
  }

  absl::PrintF("\nrebalance_bench: %d hosts x 2 trainers, %d steps, checkpoint every 10, %d cores; model flags:",
               hosts, steps, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  for (const std::string& f : model_flags) absl::PrintF(" %s", f);
  absl::PrintF("\n%-16s %14s %9s %20s %9s %10s %9s  %s\n", "run", "median step ms", "vs fixed",
               "hottest host cpu ms", "vs fixed", "migrations", "replicas", "max_over_mean_host_load");
  auto ratio = [](double x, double base) { return base > 0 ? x / base : 0.0; };
  for (size_t i = 0; i < runs.size(); ++i) {
    absl::PrintF("%-16s %14.2f %9.3f %20.2f %9.3f %10s %9s  %s\n", runs[i].first, results[i].median_step_ms,
                 ratio(results[i].median_step_ms, results[0].median_step_ms),
                 results[i].hottest_host_cpu_ms_per_step,
                 ratio(results[i].hottest_host_cpu_ms_per_step, results[0].hottest_host_cpu_ms_per_step),
                 Field(results[i],
                       [](const auto& c) { return c.counts ? absl::StrCat(c.counts->migrations) : "?"; }),
                 Field(results[i],
                       [](const auto& c) { return c.counts ? absl::StrCat(c.counts->replications) : "?"; }),
                 Field(results[i], [](const auto& c) {
                   if (!c.max_over_mean_host_load) return std::string("?");
                   return absl::StrFormat("{\"first_10_steps\":%.4f,\"last_10_steps\":%.4f}",
                                          c.max_over_mean_host_load->first_10_steps,
                                          c.max_over_mean_host_load->last_10_steps);
                 }));
  }
  absl::PrintF(
      "(step ms: tokens per step / the step's tokens/s, median over steps %d..%d; host cpu: the busiest host process's CPU time / steps; expert capacity (--capacity_factor) bounds each expert's work per step, so a hot host does less\n"
      " extra work than its routed-token share suggests. Runs kept in %s)\n",
      kFirstRebalanceStep + 1, steps, workdir);
  absl::PrintF("ratio auto_vs_fixed_step_time %.4f\n", ratio(results[1].median_step_ms, results[0].median_step_ms));
  absl::PrintF("ratio live_move_cost_steps %.4f\n", results[1].live_move_cost_steps);
  if (absl::Status s = sy::bench::MeasureRecoveries({hosts, steps, data, workdir, model_flags}); !s.ok()) {
    std::cerr << "rebalance_bench: " << s << "\n";
    return 1;
  }
  return 0;
}
