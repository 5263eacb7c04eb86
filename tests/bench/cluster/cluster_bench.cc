// cluster_bench: trains the same model on the same machine as --hosts=0 (the
// in-process baseline), 1 host x 1 trainer, 2 hosts x 2 trainers (f32 and bf16
// wire: expert activations, dense gradients and parameters but the router's) through
// sy-local's cluster runner, and prints each shape's median
// tokens/s, its ratio to the baseline measured in this run, and the bytes the
// trainers send per token against the minimum they must send (WireMinimum below).
// The in-process and 2x2 f32 runs, whose ratio is the headline, alternate --rounds
// times (default 3): single runs on a shared machine move by several percent, and
// the table keeps the round of the median ratio.
// Everything is measured in steady state: over the steps that dropped under 5% of
// their routed tokens (steady_state.h), once the router has balanced; the default
// 240 steps leave a few dozen of them with the default model and tinyshakespeare.
// Each shape also reports the CPU time all its processes spent per token and how busy
// they kept the machine's cores (whole runs), which shows what bounds a cluster on a
// machine whose cores its processes share; and, for the in-process, 2x2 and plain-TCP
// 2x2 runs, those seconds by process and thread name (sampled from /proc while they
// run: thread_cpu.h), which shows which part of a node they went to.
// A 2x2 f32 run over plain TCP (--insecure) shows what CurveZMQ's encryption costs:
// `ratio cluster_2x2_vs_inprocess_plain X`, printed before the headline.
// Ends with `ratio cluster_2x2_vs_inprocess X` (2 hosts x 2 trainers f32 tokens/s
// over the in-process run's) and `ratio wire_bytes_vs_min X` (its sent bytes over
// that minimum; `wire_bytes_vs_min_bf16` for the bf16 wire).
//
//   build/bin/cluster_bench [--rounds=3] [--steps=240] [--data=FILE] [--workdir=DIR] [model/training flags]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/process_setup.h"
#include "gpu/model/optimizer.h"
#include "orchestration/local/launcher_flags.h"
#include "orchestration/local/local_cluster.h"
#include "orchestration/local/run_report.h"
#include "orchestration/local/steady_state.h"
#include "services/cluster/model_flags.h"
#include "services/cluster/model_options.h"
#include "services/cluster/placement.h"
#include "services/cluster/switch_layers.h"
#include "services/trainer/rollback.h"
#include "tests/bench/cluster/bench_args.h"
#include "tests/bench/support/thread_cpu.h"

ABSL_FLAG(int32_t, rounds, 3, "in-process and 2x2 f32 runs, alternated, whose median ratio is the headline (1-20)");

namespace {

struct Shape {
  const char* name;
  int hosts;
  int trainers;
  const char* wire;
  bool plain = false;  // --insecure: plain TCP instead of CurveZMQ (what encryption costs)
};

struct Measured {
  double tokens_per_s = 0;
  double dropped_frac = 0;      // over the counted steps
  double all_dropped_frac = 0;  // over every step
  int counted_steps = 0;
  std::optional<double> bytes_per_token;
  double cpu_s = 0;   // user + system seconds of every process of the run
  double wall_s = 0;  // the run's wall time
  std::map<std::string, double> cpu_by_thread;  // seconds on CPU by "process/thread" name, sampled
};

// CPU seconds (user + system) of this process's children that have ended so far: a
// run's processes, once RunLocalCluster has waited for them.
double ChildrenCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// The runs' CPU seconds per million training tokens by process/thread name, side by side,
// busiest first in the second run (the 2x2 cluster); names under 0.3 s/Mtok in every run are left out.
void PrintCpuByThread(const std::vector<std::pair<std::string, const Measured*>>& runs, double run_tokens) {
  std::map<std::string, std::vector<double>> rows;
  for (size_t r = 0; r < runs.size(); ++r) {
    for (const auto& [name, seconds] : runs[r].second->cpu_by_thread) {
      rows[name].resize(runs.size());
      rows[name][r] = seconds / run_tokens * 1e6;
    }
  }
  std::vector<std::pair<std::string, std::vector<double>>> sorted;
  for (auto& [name, values] : rows) {
    if (*std::max_element(values.begin(), values.end()) >= 0.3) sorted.emplace_back(name, values);
  }
  std::sort(sorted.begin(), sorted.end(), [&](const auto& a, const auto& b) { return a.second[1] > b.second[1]; });
  absl::PrintF("\n%-40s", "cpu s/Mtok by process/thread");
  for (const auto& run : runs) absl::PrintF(" %11s", run.first);
  std::vector<double> totals(runs.size());
  for (const auto& [name, values] : sorted) {
    absl::PrintF("\n%-40s", name);
    for (size_t r = 0; r < values.size(); ++r) {
      absl::PrintF(" %11.1f", values[r]);
      totals[r] += values[r];
    }
  }
  absl::PrintF("\n%-40s", "listed threads");
  for (double total : totals) absl::PrintF(" %11.1f", total);
  absl::PrintF("\n");
}

int WireDtypeBytes(const Shape& shape) { return absl::string_view(shape.wire) == "bf16" ? 2 : 4; }

// The bytes of one copy of the dense parameters (every tensor but the experts') on the
// wire: what a trainer pushes as gradients (once per tree node of its micro-batches)
// and pulls once a step. With the bf16 wire every one but the router's is bf16.
double DenseWireBytes(const sy::gpu::ModelConfig& config, const Shape& shape) {
  const std::vector<sy::gpu::ParamInfo> infos = sy::gpu::ParamInfos(config);
  double bytes = 0;
  for (uint32_t index : sy::cluster::DenseShardParams(infos)) {
    const bool bf16 = WireDtypeBytes(shape) == 2 && sy::gpu::OnBf16DenseWire(infos[index]);
    bytes += static_cast<double>(infos[index].numel) * (bf16 ? 2 : 4);
  }
  return bytes;
}

// The dense gradients each step must push with `trainers` trainers: one per node of
// the fixed gradient tree that covers a trainer's share of the micro-batches (the
// trainer sums the rest itself; the hosts sum those nodes).
int DensePushesPerStep(int trainers, int micro_batches) {
  int pushes = 0;
  for (int t = 0; t < trainers; ++t) {
    pushes += static_cast<int>(sy::trainer::DenseNodesOf({t, trainers}, micro_batches).size());
  }
  return pushes;
}

// The bytes per token the trainers must send with `shape`'s wire, the scope of
// bytes_sent (requests only): per Switch layer each kept token's activation to its
// expert (forward) and its output gradient to the same expert (backward); plus the
// dense gradients pushed (DensePushesPerStep). The parameters pulled come back in
// replies, which bytes_sent does not count: they are printed beside it, not added.
double WireMinimum(const sy::gpu::ModelConfig& config, const sy::cluster::TrainerOptions& model, const Shape& shape,
                   double dropped_frac) {
  const double tokens_per_step = static_cast<double>(model.micro_batch) * model.micro_batches * model.context;
  const double activations = 2.0 * config.d_model * WireDtypeBytes(shape) * sy::cluster::SwitchLayerCount(config) *
                             (1 - dropped_frac);
  const double dense_pushed = DenseWireBytes(config, shape) * DensePushesPerStep(shape.trainers, model.micro_batches);
  return activations + dense_pushed / tokens_per_step;
}

}  // namespace

int main(int argc, char** argv) {
  sy::base::SetUpProcess();
  // The benchmark model: the flag defaults with 4 micro-batches a step (so 2 trainers split them evenly).
  const sy::bench::BenchArgs args = sy::bench::ParseBenchArgs(
      argc, argv,
      {"--steps=240", absl::StrCat("--workdir=/tmp/cluster_bench_", getpid()), "--micro_batches=4", "--eval_every=0",
       "--eval_batches=1"},
      /*takes_hosts=*/false,
      "usage: cluster_bench [--rounds=3] [--steps=240] [--data=FILE] [--workdir=DIR] [model/training flags]",
      {"rounds"});
  const int rounds = absl::GetFlag(FLAGS_rounds);
  if (rounds < 1 || rounds > 20) {
    std::cerr << "cluster_bench: --rounds must be in [1, 20], not " << rounds << "\n";
    return 2;
  }
  const std::string& data = args.data;
  const std::string& workdir = args.workdir;
  const int64_t steps = args.steps;
  const std::vector<std::string>& model_flags = args.model_flags;
  absl::StatusOr<sy::cluster::TrainerOptions> model = sy::cluster::ParseModelFlags(model_flags);
  if (!model.ok()) {
    std::cerr << "cluster_bench: " << model.status() << "\n";
    return 2;
  }
  absl::StatusOr<sy::gpu::ModelConfig> config = sy::cluster::ModelConfigFromOptions(*model);
  if (!config.ok()) {
    std::cerr << "cluster_bench: " << config.status() << "\n";
    return 2;
  }
  const int switch_layers = sy::cluster::SwitchLayerCount(*config);
  const int64_t tokens_per_step = int64_t{model->micro_batch} * model->micro_batches * model->context;

  const std::vector<Shape> shapes = {{"--hosts=0 (in-process)", 0, 1, "f32"},
                                     {"1 host x 1 trainer", 1, 1, "f32"},
                                     {"2 hosts x 2 trainers", 2, 2, "f32"},
                                     {"2 hosts x 2 trainers", 2, 2, "bf16"},
                                     {"2x2, plain TCP", 2, 2, "f32", /*plain=*/true}};
  std::atomic<bool> stop{false};
  // One run of `shape`: InvalidArgument for flags sy-local refuses, another error when it fails.
  auto run = [&](const Shape& shape, const std::string& name) -> absl::StatusOr<Measured> {
    const std::string dir = absl::StrCat(workdir, "/", name);
    std::vector<std::string> args = {absl::StrCat("--hosts=", shape.hosts), absl::StrCat("--trainers=", shape.trainers),
                                     absl::StrCat("--steps=", steps), "--data=" + data, "--workdir=" + dir,
                                     absl::StrCat("--wire_dtype=", shape.wire),
                                     absl::StrCat("--dense_wire_dtype=", shape.wire), "--timeout_s=600"};
    if (shape.plain) args.push_back("--insecure");
    args.insert(args.end(), model_flags.begin(), model_flags.end());
    absl::StatusOr<sy::local::LauncherOptions> options = sy::local::ParseLauncherOptions(args);
    if (!options.ok()) return options.status();
    std::cerr << "cluster_bench: running " << shape.name << ", " << shape.wire << " wire, " << steps << " steps\n";
    std::ostringstream log;
    const double cpu_before = ChildrenCpuSeconds();
    const auto started = std::chrono::steady_clock::now();
    sy::bench::ChildThreadCpuSampler sampler;
    if (absl::Status s = sy::local::RunLocalCluster(*options, log, stop); !s.ok()) {
      return absl::InternalError(absl::StrCat(shape.name, " failed: ", s.ToString()));
    }
    Measured m;
    m.cpu_by_thread = sampler.Stop();
    m.cpu_s = ChildrenCpuSeconds() - cpu_before;
    m.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    absl::StatusOr<sy::local::RunReport> report = sy::local::ReadRunReport(dir);
    if (!report.ok()) return absl::InternalError(report.status().ToString());
    absl::StatusOr<sy::local::SteadyState> steady =
        sy::local::MeasureSteadyState(*report, sy::bench::kSteadyMaxDropped, sy::bench::kSteadyMinSteps);
    if (!steady.ok()) return absl::InternalError(absl::StrCat(shape.name, ": ", steady.status().message()));
    std::cerr << "cluster_bench: steady state from step " << steady->first_step << ", " << steady->steps
              << " steps counted\n";
    m.tokens_per_s = steady->median_tokens_per_s;
    m.dropped_frac = steady->mean_dropped_frac;
    m.all_dropped_frac = sy::local::MeanDroppedFraction(*report);
    m.counted_steps = steady->steps;
    if (steady->bytes_sent_per_step) m.bytes_per_token = *steady->bytes_sent_per_step / tokens_per_step;
    return m;
  };
  auto exit_code = [](const absl::Status& s) {
    std::cerr << "cluster_bench: " << s.message() << "\n";
    return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  };
  // The headline pair, in-process then 2x2, `rounds` times in a row, so both see the
  // same machine load; the table shows the round of the median ratio.
  std::vector<std::pair<Measured, Measured>> pairs;
  for (int r = 1; r <= rounds; ++r) {
    absl::StatusOr<Measured> alone = run(shapes[0], absl::StrCat("h0t1_f32_r", r));
    if (!alone.ok()) return exit_code(alone.status());
    absl::StatusOr<Measured> cluster = run(shapes[2], absl::StrCat("h2t2_f32_r", r));
    if (!cluster.ok()) return exit_code(cluster.status());
    std::cerr << absl::StrFormat("cluster_bench: round %d of %d: in-process %.0f tokens/s, 2x2 %.0f, ratio %.3f\n", r,
                                 rounds, alone->tokens_per_s, cluster->tokens_per_s,
                                 cluster->tokens_per_s / alone->tokens_per_s);
    pairs.emplace_back(*alone, *cluster);
  }
  std::sort(pairs.begin(), pairs.end(), [](const auto& x, const auto& y) {
    return x.second.tokens_per_s / x.first.tokens_per_s < y.second.tokens_per_s / y.first.tokens_per_s;
  });
  std::vector<Measured> results(shapes.size());
  std::tie(results[0], results[2]) = pairs[(pairs.size() - 1) / 2];
  for (size_t i : {size_t{1}, size_t{3}, size_t{4}}) {
    absl::StatusOr<Measured> m = run(shapes[i], absl::StrCat("h", shapes[i].hosts, "t", shapes[i].trainers, "_",
                                                             shapes[i].wire, shapes[i].plain ? "_plain" : ""));
    if (!m.ok()) return exit_code(m.status());
    results[i] = *m;
  }

  const int cores = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  absl::PrintF("\ncluster_bench: d_model %d, %d layers (%d Switch, %d experts), %d tokens/step, %d steps, %d cores\n",
               model->d_model, model->layers, switch_layers, model->experts, tokens_per_step, steps, cores);
  absl::PrintF("%-24s %5s %10s %8s %12s %12s %8s %8s %8s %7s %12s\n", "shape", "wire", "tokens/s", "vs h=0",
               "sent B/tok", "min B/tok", "x min", "dropped", "all", "counted", "pulled B/tok");
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Shape& shape = shapes[i];
    const Measured& m = results[i];
    const double minimum = WireMinimum(*config, *model, shape, m.dropped_frac);
    std::string sent = "-", min_text = "-", ratio = "-", pulled = "-";
    if (m.bytes_per_token) {
      sent = absl::StrFormat("%.0f", *m.bytes_per_token);
      min_text = absl::StrFormat("%.0f", minimum);
      ratio = absl::StrFormat("%.2f", *m.bytes_per_token / minimum);
      pulled = absl::StrFormat("%.0f", DenseWireBytes(*config, shape) * shape.trainers / tokens_per_step);
    }
    absl::PrintF("%-24s %5s %10.0f %8.3f %12s %12s %8s %7.1f%% %7.1f%% %7d %12s\n", shape.name, shape.wire,
                 m.tokens_per_s, m.tokens_per_s / results[0].tokens_per_s, sent, min_text, ratio, 100 * m.dropped_frac,
                 100 * m.all_dropped_frac, m.counted_steps, pulled);
  }
  // The CPU the runs cost: per million training tokens, and the share of the cores kept busy.
  const double run_tokens = static_cast<double>(steps) * static_cast<double>(tokens_per_step);
  auto cpu_per_mtok = [&](const Measured& m) { return m.cpu_s / run_tokens * 1e6; };
  absl::PrintF("\n%-24s %5s %11s %8s %6s\n", "shape", "wire", "cpu s/Mtok", "vs h=0", "busy");
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Measured& m = results[i];
    absl::PrintF("%-24s %5s %11.1f %8.3f %5.0f%%\n", shapes[i].name, shapes[i].wire, cpu_per_mtok(m),
                 cpu_per_mtok(m) / cpu_per_mtok(results[0]), 100 * m.cpu_s / (m.wall_s * cores));
  }
  PrintCpuByThread({{"in-process", &results[0]}, {"2x2", &results[2]}, {"2x2 plain", &results[4]}}, run_tokens);
  absl::PrintF(
      "(Steady state: tokens/s, sent B/tok and dropped count only the steps that dropped under %.0f%% of their\n"
      " routed tokens (counted); all: dropped over every step, from initialisation.\n"
      " sent B/tok: mean bytes_sent per step in metrics.jsonl, i.e. every trainer's requests: expert buckets,\n"
      " dense gradient pushes and parameter pull requests, headers included, over tokens per step.\n"
      " min B/tok, the least the trainers must send at the wire dtype: per Switch layer the kept tokens'\n"
      " activations to their experts and their output gradients back to them (2 x d_model x dtype x (1 - dropped)),\n"
      " plus the dense gradients pushed (the %.0f bytes of the dense parameters in f32, about half that on\n"
      " the bf16 wire, where the router's stay f32, x pushes a step / tokens per step): one push per node of the\n"
      " fixed gradient tree over the %d micro-batches that covers a trainer's share of them (%d a step with 2\n"
      " trainers; a trainer sums its share's micro-batches itself). dropped: mean share of\n"
      " routed tokens over capacity, which never travel. pulled B/tok: the dense parameters each trainer pulls\n"
      " once a step at the wire dtype; they travel in replies, which bytes_sent does not count, so they are not\n"
      " in min B/tok.\n"
      " cpu s/Mtok: user + system seconds of all the run's processes per million training tokens; busy: those\n"
      " seconds over wall time x cores. Whole runs, start-up included. Where a cluster's processes share the\n"
      " cores, its tokens/s is about busy x cores / cpu per token: what it spends per token beyond the\n"
      " in-process run (encryption, TCP, copies) it can only make up by keeping the cores busier.\n"
      " by thread: the same seconds by process and thread name, sampled from /proc every 0.2 s: the processes'\n"
      " compute (sy-trainer's own thread and sy-pool; a host's sy-actors), libzmq's I/O threads (ZMQbg/IO/0:\n"
      " encryption and TCP), the RPC layer's sy-io.\n"
      " Runs kept in %s)\n",
      100 * sy::bench::kSteadyMaxDropped, DenseWireBytes(*config, shapes[0]), model->micro_batches,
      DensePushesPerStep(2, model->micro_batches), workdir);
  // shapes: [0] in-process, [2] 2x2 f32, [3] 2x2 bf16, [4] 2x2 f32 over plain TCP.
  absl::PrintF("\nratio cluster_2x2_vs_inprocess_plain %.3f\n", results[4].tokens_per_s / results[0].tokens_per_s);
  absl::PrintF("ratio cluster_2x2_vs_inprocess %.3f\n", results[2].tokens_per_s / results[0].tokens_per_s);
  for (size_t i : {size_t{2}, size_t{3}}) {
    if (!results[i].bytes_per_token) continue;
    absl::PrintF("ratio wire_bytes_vs_min%s %.3f\n", i == 3 ? "_bf16" : "",
                 *results[i].bytes_per_token / WireMinimum(*config, *model, shapes[i], results[i].dropped_frac));
  }
  return 0;
}
