// cluster_bench: trains the same model on the same machine as --hosts=0 (the
// in-process baseline), 1 host x 1 trainer, 2 hosts x 2 trainers (f32 and bf16
// wire) through sy-local's cluster runner, and prints each shape's median
// tokens/s, its ratio to the baseline measured in this run, and the bytes the
// trainers send per token against the minimum they must send (WireMinimum below).
// Everything is measured in steady state: over the steps that dropped under 5% of
// their routed tokens (steady_state.h), once the router has balanced; the default
// 240 steps leave a few dozen of them with the default model and tinyshakespeare.
// Ends with `ratio cluster_2x2_vs_inprocess X` (2 hosts x 2 trainers f32 tokens/s
// over the in-process run's) and `ratio wire_bytes_vs_min X` (its sent bytes over
// that minimum; `wire_bytes_vs_min_bf16` for the bf16 wire).
//
//   build/bin/cluster_bench [--steps=240] [--data=FILE] [--workdir=DIR] [model/training flags]
#include <unistd.h>

#include <atomic>
#include <optional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/process_setup.h"
#include "gpu/model/grad_tree.h"
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

namespace {

struct Shape {
  const char* name;
  int hosts;
  int trainers;
  const char* wire;
};

struct Measured {
  double tokens_per_s = 0;
  double dropped_frac = 0;      // over the counted steps
  double all_dropped_frac = 0;  // over every step
  int counted_steps = 0;
  std::optional<double> bytes_per_token;
};

int WireDtypeBytes(const Shape& shape) { return absl::string_view(shape.wire) == "bf16" ? 2 : 4; }

// Elements of the dense parameters (every tensor but the experts'): what a trainer
// pushes as gradients (once per tree node of its micro-batches) and pulls once a step.
int64_t DenseParamCount(const sy::gpu::ModelConfig& config) {
  const std::vector<sy::gpu::ParamInfo> infos = sy::gpu::ParamInfos(config);
  int64_t count = 0;
  for (uint32_t index : sy::cluster::DenseShardParams(infos)) count += infos[index].numel;
  return count;
}

// The dense gradients each step must push with `trainers` trainers: one per node of
// the fixed gradient tree that covers a trainer's share of the micro-batches (the
// trainer sums the rest itself; the hosts sum those nodes).
int DensePushesPerStep(int trainers, int micro_batches) {
  int pushes = 0;
  for (int t = 0; t < trainers; ++t) {
    const std::vector<int> share = sy::trainer::MicroBatchesOf({t, trainers}, micro_batches);
    if (!share.empty()) pushes += static_cast<int>(sy::gpu::GradTree::Cover(share.front(), share.back() + 1,
                                                                            micro_batches).size());
  }
  return pushes;
}

// The bytes per token the trainers must send at wire dtype `dtype_bytes`, the scope of
// bytes_sent (requests only): per Switch layer each kept token's activation to its
// expert (forward) and its output gradient to the same expert (backward); plus the
// dense gradients pushed (DensePushesPerStep). The parameters pulled come back in
// replies, which bytes_sent does not count: they are printed beside it, not added.
double WireMinimum(const sy::gpu::ModelConfig& config, const sy::cluster::TrainerOptions& model, int trainers,
                   int dtype_bytes, double dropped_frac) {
  const double tokens_per_step = static_cast<double>(model.micro_batch) * model.micro_batches * model.context;
  const double activations =
      2.0 * config.d_model * dtype_bytes * sy::cluster::SwitchLayerCount(config) * (1 - dropped_frac);
  const double dense_pushed = static_cast<double>(DenseParamCount(config)) * dtype_bytes *
                              DensePushesPerStep(trainers, model.micro_batches);
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
      /*takes_hosts=*/false, "usage: cluster_bench [--steps=240] [--data=FILE] [--workdir=DIR] [model/training flags]");
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
                                     {"2 hosts x 2 trainers", 2, 2, "bf16"}};
  std::vector<Measured> results;
  std::atomic<bool> stop{false};
  for (const Shape& shape : shapes) {
    const std::string dir = absl::StrCat(workdir, "/h", shape.hosts, "t", shape.trainers, "_", shape.wire);
    std::vector<std::string> args = {absl::StrCat("--hosts=", shape.hosts), absl::StrCat("--trainers=", shape.trainers),
                                     absl::StrCat("--steps=", steps), "--data=" + data, "--workdir=" + dir,
                                     absl::StrCat("--wire_dtype=", shape.wire), "--timeout_s=600"};
    args.insert(args.end(), model_flags.begin(), model_flags.end());
    absl::StatusOr<sy::local::LauncherOptions> options = sy::local::ParseLauncherOptions(args);
    if (!options.ok()) {
      std::cerr << "cluster_bench: " << options.status() << "\n";
      return 2;
    }
    std::cerr << "cluster_bench: running " << shape.name << ", " << shape.wire << " wire, " << steps << " steps\n";
    std::ostringstream log;
    if (absl::Status s = sy::local::RunLocalCluster(*options, log, stop); !s.ok()) {
      std::cerr << "cluster_bench: " << shape.name << " failed: " << s << "\n";
      return 1;
    }
    absl::StatusOr<sy::local::RunReport> report = sy::local::ReadRunReport(dir);
    if (!report.ok()) {
      std::cerr << "cluster_bench: " << report.status() << "\n";
      return 1;
    }
    absl::StatusOr<sy::local::SteadyState> steady =
        sy::local::MeasureSteadyState(*report, sy::bench::kSteadyMaxDropped, sy::bench::kSteadyMinSteps);
    if (!steady.ok()) {
      std::cerr << "cluster_bench: " << shape.name << ": " << steady.status().message() << "\n";
      return 1;
    }
    std::cerr << "cluster_bench: steady state from step " << steady->first_step << ", " << steady->steps
              << " steps counted\n";
    Measured m;
    m.tokens_per_s = steady->median_tokens_per_s;
    m.dropped_frac = steady->mean_dropped_frac;
    m.all_dropped_frac = sy::local::MeanDroppedFraction(*report);
    m.counted_steps = steady->steps;
    if (steady->bytes_sent_per_step) m.bytes_per_token = *steady->bytes_sent_per_step / tokens_per_step;
    results.push_back(m);
  }

  absl::PrintF("\ncluster_bench: d_model %d, %d layers (%d Switch, %d experts), %d tokens/step, %d steps, %d cores\n",
               model->d_model, model->layers, switch_layers, model->experts, tokens_per_step, steps,
               static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  absl::PrintF("%-24s %5s %10s %8s %12s %12s %8s %8s %8s %7s %12s\n", "shape", "wire", "tokens/s", "vs h=0",
               "sent B/tok", "min B/tok", "x min", "dropped", "all", "counted", "pulled B/tok");
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Shape& shape = shapes[i];
    const Measured& m = results[i];
    const int dtype_bytes = WireDtypeBytes(shape);
    const double minimum = WireMinimum(*config, *model, shape.trainers, dtype_bytes, m.dropped_frac);
    std::string sent = "-", min_text = "-", ratio = "-", pulled = "-";
    if (m.bytes_per_token) {
      sent = absl::StrFormat("%.0f", *m.bytes_per_token);
      min_text = absl::StrFormat("%.0f", minimum);
      ratio = absl::StrFormat("%.2f", *m.bytes_per_token / minimum);
      pulled = absl::StrFormat("%.0f", static_cast<double>(DenseParamCount(*config)) * dtype_bytes * shape.trainers /
                                           tokens_per_step);
    }
    absl::PrintF("%-24s %5s %10.0f %8.3f %12s %12s %8s %7.1f%% %7.1f%% %7d %12s\n", shape.name, shape.wire,
                 m.tokens_per_s, m.tokens_per_s / results[0].tokens_per_s, sent, min_text, ratio, 100 * m.dropped_frac,
                 100 * m.all_dropped_frac, m.counted_steps, pulled);
  }
  absl::PrintF(
      "(Steady state: tokens/s, sent B/tok and dropped count only the steps that dropped under %.0f%% of their\n"
      " routed tokens (counted); all: dropped over every step, from initialisation.\n"
      " sent B/tok: mean bytes_sent per step in metrics.jsonl, i.e. every trainer's requests: expert buckets,\n"
      " dense gradient pushes and parameter pull requests, headers included, over tokens per step.\n"
      " min B/tok, the least the trainers must send at the wire dtype: per Switch layer the kept tokens'\n"
      " activations to their experts and their output gradients back to them (2 x d_model x dtype x (1 - dropped)),\n"
      " plus the dense gradients pushed (%d dense parameters x dtype x pushes a step / tokens per step): one\n"
      " per node of the fixed gradient tree over the %d micro-batches that covers a trainer's share of them\n"
      " (%d a step with 2 trainers; a trainer sums its share's micro-batches itself). dropped: mean share of\n"
      " routed tokens over capacity, which never travel. pulled B/tok: the dense parameters each trainer pulls\n"
      " once a step at the wire dtype; they travel in replies, which bytes_sent does not count, so they are not\n"
      " in min B/tok. Runs kept in %s)\n",
      100 * sy::bench::kSteadyMaxDropped, DenseParamCount(*config), model->micro_batches,
      DensePushesPerStep(2, model->micro_batches), workdir);
  // shapes: [0] in-process, [2] 2x2 f32, [3] 2x2 bf16.
  absl::PrintF("\nratio cluster_2x2_vs_inprocess %.3f\n", results[2].tokens_per_s / results[0].tokens_per_s);
  for (size_t i : {size_t{2}, size_t{3}}) {
    if (!results[i].bytes_per_token) continue;
    const int dtype_bytes = WireDtypeBytes(shapes[i]);
    absl::PrintF("ratio wire_bytes_vs_min%s %.3f\n", i == 3 ? "_bf16" : "",
                 *results[i].bytes_per_token /
                     WireMinimum(*config, *model, shapes[i].trainers, dtype_bytes, results[i].dropped_frac));
  }
  return 0;
}
