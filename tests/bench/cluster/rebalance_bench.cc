// rebalance_bench: what automatic hot-expert rebalancing buys under a lasting router skew,
// against the fixed static placement and against an ideal one. Trains the same model on
// the same data three times on a 4-host x 2-trainer cluster (a checkpoint every 10 steps),
// each host emulating a device of kEmulatedGflops (sy-expert-host --emulate_device_gflops:
// an expert bucket's reply waits its FLOPs / G, so the step time follows the busiest host's
// device, as on hosts with their own devices; on a machine with fewer cores than processes
// it would barely move otherwise):
//   fixed  --auto_rebalance=false: the static round-robin placement throughout;
//   auto   automatic rebalancing with live moves (from step 10 on, each checkpoint);
//   ideal  --auto_rebalance=false --initial_placement=FILE: from step 1 the placement the
//          coordinator's own planner reaches in hindsight (planning again on its own result
//          until it plans no more moves) from the fixed run's measured per-expert tokens over
//          the window below (ideal_placement.h). Chosen over the auto run's final table
//          because it needs nothing from the auto run but its window, and shows whether the
//          online rebalancing (a moving load, acting at checkpoints) reaches what the planner
//          would do knowing the load in advance.
// The window: the steps after the auto runs' last live move (after the step that carried
// it; at least after step 10), through the last step, the same for all three runs, where
// the auto run's placement has settled. The three run twice, interleaved (fixed, auto,
// ideal, fixed, auto, ideal), and each configuration counts with its faster run: the
// machine's load only slows a run down, and a slow spell then does not decide a ratio. It prints each run's median step wall time over
// the window (tokens per step / the step's tokens/s), the hottest host's CPU time per
// step, the coordinator's migrations, replicas and max/mean host load of the first and
// last 10 steps, and:
//   ratio auto_vs_fixed_step_time   auto's median step time over fixed's (below 1: rebalancing pays)
//   ratio auto_vs_ideal_step_time   auto's over ideal's (near 1: the online rebalancing reached
//                                   the hindsight placement and its replicas cost nothing more)
//   ratio ideal_vs_fixed_step_time  ideal's over fixed's (what a placement can buy at all here)
//   ratio live_move_cost_steps      the most extra wall time of a step that carried live moves
//                                   (the step after their boundary, read from coordinator.log),
//                                   over auto's median, in median step times
// The workload: the cluster tests' tiny model with 8 experts per Switch layer (2 per host),
// --skew=30 (expert 0 starts hot) and no load-balancing loss (--lb_alpha=0), so the skewed
// routing stays skewed, as hot experts do when the balancing loss is weak: within 30 steps
// nearly every token goes to experts 0 and 4, both on host-0 under the static rule;
// --capacity_factor=2 lets a hot expert do up to twice its even share. With
// the default lb_alpha the loss spreads the tokens within about 10 steps and the static
// placement stays near balanced: then no placement buys much (see ideal_vs_fixed).
// Then the same cluster loses its last host three ways (a hang found by the heartbeat
// timeout, a kill found from its connection, a kill with --redundancy=2) and the cost of
// each is printed with its own ratio lines (recovery_cases.h).
// No timed assertions: a report, like every tests/bench benchmark. The machine's load
// moves the figures; run it more than once.
//
//   build/bin/rebalance_bench [--steps=100] [--hosts=4] [--data=FILE] [--workdir=DIR] [model/training flags]
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/process_setup.h"
#include "services/cluster/coordinator_link.h"
#include "services/cluster/model_flags.h"
#include "services/cluster/model_options.h"
#include "services/coordinator/coordinator_options.h"
#include "services/coordinator/initial_placement.h"
#include "tests/bench/cluster/bench_args.h"
#include "tests/bench/cluster/ideal_placement.h"
#include "tests/bench/cluster/rebalance_runs.h"
#include "tests/bench/cluster/recovery_cases.h"

namespace {

using sy::bench::ClusterRun;

constexpr int64_t kFirstRebalanceStep = 10;  // the first checkpoint: where a rebalance can happen
constexpr int64_t kMinWindowSteps = 20;      // the medians need this many settled steps
constexpr int kRounds = 2;                   // runs of each configuration; the fastest counts
// The emulated device of every host: slow enough that a bucket of the tiny model (tens to
// hundreds of rows of d_model 32, d_ff 64: 8 kFLOP a row forward) takes milliseconds, far
// more than its real computation.
constexpr double kEmulatedGflops = 0.2;

struct Row {
  std::string name;
  const ClusterRun* run;
  double median_ms;
};

double Ratio(double x, double base) { return base > 0 ? x / base : 0.0; }

// `value` of the run's cluster record as text ("?" without one).
std::string Field(const ClusterRun& run, const std::function<std::string(const sy::local::ClusterRecord&)>& value) {
  return run.report.cluster ? value(*run.report.cluster) : "?";
}

double HottestHostCpuMsPerStep(const ClusterRun& run, int64_t steps) {
  double ms = 0;
  if (run.report.cluster) {
    for (const auto& [host, seconds] : run.report.cluster->host_cpu_seconds)
      ms = std::max(ms, 1000.0 * seconds / steps);
  }
  return ms;
}

void PrintTable(const std::vector<Row>& rows, int64_t steps) {
  absl::PrintF("%-16s %14s %9s %20s %9s %10s %9s  %s\n", "run", "median step ms", "vs fixed", "hottest host cpu ms",
               "vs fixed", "migrations", "replicas", "max_over_mean_host_load");
  const double fixed_cpu = HottestHostCpuMsPerStep(*rows[0].run, steps);
  for (const Row& r : rows) {
    const double cpu = HottestHostCpuMsPerStep(*r.run, steps);
    absl::PrintF("%-16s %14.2f %9.3f %20.2f %9.3f %10s %9s  %s\n", r.name, r.median_ms,
                 Ratio(r.median_ms, rows[0].median_ms), cpu, Ratio(cpu, fixed_cpu),
                 Field(*r.run, [](const auto& c) { return c.counts ? absl::StrCat(c.counts->migrations) : "?"; }),
                 Field(*r.run, [](const auto& c) { return c.counts ? absl::StrCat(c.counts->replications) : "?"; }),
                 Field(*r.run, [](const auto& c) {
                   if (!c.max_over_mean_host_load) return std::string("?");
                   return absl::StrFormat("{\"first_10_steps\":%.4f,\"last_10_steps\":%.4f}",
                                          c.max_over_mean_host_load->first_10_steps,
                                          c.max_over_mean_host_load->last_10_steps);
                 }));
  }
}

// The bench's flags before the command line's (see the file comment for the workload).
std::vector<std::string> BenchDefaults() {
  return {"--steps=100",
          "--hosts=4",
          absl::StrCat("--workdir=/tmp/rebalance_bench_", getpid()),
          "--layers=2",
          "--d_model=32",
          "--heads=2",
          "--d_ff=64",
          "--experts=8",
          "--moe_every=2",
          "--context=32",
          "--micro_batch=4",
          "--micro_batches=4",
          "--warmup=5",
          "--lr=1e-3",
          "--eval_every=0",
          "--eval_batches=1",
          "--skew=30",
          "--lb_alpha=0",
          "--capacity_factor=2",
          absl::StrCat("--host_args=--emulate_device_gflops=", kEmulatedGflops)};
}

// Runs one of the three; exits the bench on failure.
ClusterRun Run(const std::string& name, std::vector<std::string> launcher_args, const std::string& coordinator_args,
               const std::string& dir, double tokens_per_step) {
  static const std::atomic<bool> kNeverStop{false};
  std::cerr << "rebalance_bench: running " << name << "\n";
  launcher_args.push_back("--coordinator_args=" + coordinator_args);
  absl::StatusOr<ClusterRun> run = sy::bench::RunCluster(launcher_args, dir, tokens_per_step, kNeverStop);
  if (!run.ok()) {
    std::cerr << "rebalance_bench: " << name << " failed: " << run.status() << "\n";
    std::exit(1);
  }
  return *std::move(run);
}

// The ideal placement's file, planned from `fixed` over [first, last]; exits on failure.
std::string WriteIdealPlacement(const ClusterRun& fixed, const sy::cluster::ModelShape& shape, int64_t first,
                                int64_t last, const std::string& path) {
  std::vector<std::string> hosts;
  if (fixed.report.cluster) {
    for (const auto& [host, seconds] : fixed.report.cluster->host_cpu_seconds) hosts.push_back(host);
  }
  const sy::coordinator::CoordinatorOptions coordinator;  // the planner as the coordinator runs it
  sy::coordinator::RebalanceOptions planner;
  planner.threshold = coordinator.rebalance_threshold;
  planner.max_replicas = coordinator.max_replicas;
  absl::StatusOr<sy::bench::IdealPlacement> ideal =
      sy::bench::PlanIdealPlacement(fixed.report, hosts, shape, first, last, planner);
  if (!ideal.ok()) {
    std::cerr << "rebalance_bench: the ideal placement: " << ideal.status() << "\n";
    std::exit(1);
  }
  std::ofstream(path) << sy::coordinator::InitialPlacementJson(shape, ideal->table.entries());
  std::cerr << "rebalance_bench: ideal placement (" << ideal->moves.size() << " moves in " << ideal->rounds
            << " plans, max/mean host load " << ideal->max_over_mean_before << " -> " << ideal->max_over_mean_after
            << "): " << path << "\n";
  return path;
}

// Of a configuration's runs (one per round), the one with the lowest median over the
// window [first, last]: the machine's load only ever slows a run down.
Row Fastest(const std::string& name, const std::vector<ClusterRun>& runs, int64_t first, int64_t last) {
  Row best{name, nullptr, 0};
  for (const ClusterRun& run : runs) {
    const double ms = MedianStepMs(run, first, last);
    if (best.run == nullptr || ms < best.median_ms) best = {name, &run, ms};
  }
  return best;
}

// Prints the table, the checksums and the ratios over the window [first, args.steps] of
// the fastest round of each configuration; whether every run trained alike (the same
// parameter checksum).
bool PrintReport(const sy::bench::BenchArgs& args, int64_t first, const std::vector<ClusterRun>& fixed,
                 const std::vector<ClusterRun>& rebalanced, const std::vector<ClusterRun>& ideal) {
  const std::string& dir = args.workdir;
  const std::vector<Row> rows = {Fastest("fixed placement", fixed, first, args.steps),
                                 Fastest("auto rebalance", rebalanced, first, args.steps),
                                 Fastest("ideal placement", ideal, first, args.steps)};
  absl::PrintF("\nrebalance_bench: %d hosts x 2 trainers, %d steps, checkpoint every 10, %d cores; model flags:",
               args.hosts, args.steps, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  for (const std::string& f : args.model_flags) absl::PrintF(" %s", f);
  absl::PrintF("\n");
  PrintTable(rows, args.steps);
  absl::PrintF(
      "(step ms: tokens per step / the step's tokens/s, median over steps %d..%d, after the auto runs' last live move,"
      " the lower of %d rounds (fixed, auto, ideal, again); host cpu: the busiest host process's CPU time / steps."
      " Runs kept in %s)\n",
      first, args.steps, fixed.size(), dir);
  std::string checksums;
  bool same_training = true;
  for (const auto* runs : {&fixed, &rebalanced, &ideal}) {
    for (const ClusterRun& run : *runs) {
      absl::StrAppend(&checksums, checksums.empty() ? "" : " ", run.report.param_checksum);
      same_training = same_training && run.report.param_checksum == fixed[0].report.param_checksum;
    }
  }
  absl::PrintF("parameter checksums (fixed, auto, ideal by round): %s (%s)\n", checksums,
               same_training ? "the same training" : "DIFFERENT: the runs did not train alike");
  absl::PrintF("ratio auto_vs_fixed_step_time %.4f\n", Ratio(rows[1].median_ms, rows[0].median_ms));
  absl::PrintF("ratio auto_vs_ideal_step_time %.4f\n", Ratio(rows[1].median_ms, rows[2].median_ms));
  absl::PrintF("ratio ideal_vs_fixed_step_time %.4f\n", Ratio(rows[2].median_ms, rows[0].median_ms));
  absl::PrintF("ratio live_move_cost_steps %.4f\n", sy::bench::LiveMoveCostSteps(*rows[1].run, rows[1].median_ms));
  return same_training;
}

}  // namespace

int main(int argc, char** argv) {
  sy::base::SetUpProcess();
  const sy::bench::BenchArgs args = sy::bench::ParseBenchArgs(
      argc, argv, BenchDefaults(),
      /*takes_hosts=*/true,
      "usage: rebalance_bench [--steps=100] [--hosts=4] [--data=FILE] [--workdir=DIR] [model/training flags]");
  absl::StatusOr<sy::cluster::TrainerOptions> model = sy::cluster::ParseModelFlags(args.model_flags);
  absl::StatusOr<sy::gpu::ModelConfig> config =
      model.ok() ? sy::cluster::ModelConfigFromOptions(*model) : absl::StatusOr<sy::gpu::ModelConfig>(model.status());
  if (args.hosts < 2 || !config.ok()) {
    std::cerr << "rebalance_bench: " << (config.ok() ? "--hosts must be at least 2" : config.status().ToString())
              << "\n";
    return 2;
  }
  const double tokens_per_step = static_cast<double>(model->micro_batch) * model->micro_batches * model->context;
  std::vector<std::string> launcher = {absl::StrCat("--hosts=", args.hosts),
                                       "--trainers=2",
                                       absl::StrCat("--steps=", args.steps),
                                       "--data=" + args.data,
                                       "--checkpoint_every=10",
                                       "--timeout_s=600"};
  launcher.insert(launcher.end(), args.model_flags.begin(), args.model_flags.end());
  const std::string& dir = args.workdir;
  // Rounds of the three runs, interleaved, so that a slow spell of the machine does not
  // fall on one configuration only; the ideal placement is planned from the first round.
  std::vector<ClusterRun> fixed, rebalanced, ideal;
  std::string placement;
  int64_t first = kFirstRebalanceStep + 1;
  for (int round = 1; round <= kRounds; ++round) {
    const std::string at = absl::StrCat(dir, "/round", round);
    fixed.push_back(Run("fixed placement", launcher, "--auto_rebalance=false", at + "/fixed", tokens_per_step));
    rebalanced.push_back(Run("auto rebalance", launcher, "--live_moves=true", at + "/rebalanced", tokens_per_step));
    if (!rebalanced.back().live_move_steps.empty()) first = std::max(first, rebalanced.back().live_move_steps.back() + 1);
    if (args.steps - first + 1 < kMinWindowSteps) {
      std::cerr << "rebalance_bench: the placement settled at step " << first << ", leaving fewer than "
                << kMinWindowSteps << " steps to measure: raise --steps\n";
      return 1;
    }
    if (placement.empty()) {
      placement = WriteIdealPlacement(fixed[0], sy::cluster::ModelShapeOf(*config), first, args.steps,
                                      dir + "/ideal_placement.json");
    }
    ideal.push_back(Run("ideal placement", launcher, "--auto_rebalance=false --initial_placement=" + placement,
                        at + "/ideal", tokens_per_step));
  }
  if (!PrintReport(args, first, fixed, rebalanced, ideal)) return 1;
  if (absl::Status s =
          sy::bench::MeasureRecoveries({args.hosts, args.steps, args.data, args.workdir, args.model_flags, tokens_per_step});
      !s.ok()) {
    std::cerr << "rebalance_bench: " << s << "\n";
    return 1;
  }
  return 0;
}
