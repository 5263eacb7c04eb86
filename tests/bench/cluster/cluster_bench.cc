// cluster_bench: trains the same model on the same machine as --hosts=0 (the
// in-process baseline), 1 host x 1 trainer, 2 hosts x 2 trainers (f32 and bf16
// wire) through sy-local's cluster runner, and prints each shape's median
// tokens/s, its ratio to the baseline measured in this run, and the wire bytes
// per token against the minimum: per Switch layer a token's activation goes to
// its expert and its output gradient follows in backward, 2 x d_model x dtype
// bytes sent (and as many received back).
//
//   build/bin/cluster_bench [--steps=30] [--data=FILE] [--workdir=DIR] [model/training flags]
#include <unistd.h>

#include <atomic>
#include <optional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "orchestration/local/launcher_flags.h"
#include "orchestration/local/local_cluster.h"
#include "orchestration/local/run_report.h"
#include "services/cluster/model_flags.h"
#include "services/cluster/model_options.h"
#include "services/cluster/switch_layers.h"
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
  double dropped_frac = 0;
  std::optional<double> bytes_per_token;
};

}  // namespace

int main(int argc, char** argv) {
  // The benchmark model: the flag defaults with 4 micro-batches a step (so 2 trainers split them evenly).
  const sy::bench::BenchArgs args = sy::bench::ParseBenchArgs(
      argc, argv,
      {"--steps=30", absl::StrCat("--workdir=/tmp/cluster_bench_", getpid()), "--micro_batches=4", "--eval_every=0",
       "--eval_batches=1"},
      /*takes_hosts=*/false, "usage: cluster_bench [--steps=30] [--data=FILE] [--workdir=DIR] [model/training flags]");
  const std::string& data = args.data;
  const std::string& workdir = args.workdir;
  const int64_t steps = args.steps;
  const std::vector<std::string>& model_flags = args.model_flags;
  absl::StatusOr<sy::cluster::TrainerOptions> model = sy::cluster::ParseModelFlags(model_flags);
  if (!model.ok()) {
    std::cerr << "cluster_bench: " << model.status() << "\n";
    return 2;
  }
  int switch_layers = 0;
  if (absl::StatusOr<sy::gpu::ModelConfig> config = sy::cluster::ModelConfigFromOptions(*model); config.ok()) {
    switch_layers = sy::cluster::SwitchLayerCount(*config);
  }
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
    Measured m;
    m.tokens_per_s = report->median_tokens_per_s;
    m.dropped_frac = sy::local::MeanDroppedFraction(*report);
    if (std::optional<double> bytes = sy::local::MeanBytesSentPerStep(*report)) {
      m.bytes_per_token = *bytes / tokens_per_step;
    }
    results.push_back(m);
  }

  absl::PrintF("\ncluster_bench: d_model %d, %d layers (%d Switch, %d experts), %d tokens/step, %d steps, %d cores\n",
               model->d_model, model->layers, switch_layers, model->experts, tokens_per_step, steps,
               static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  absl::PrintF("%-24s %5s %10s %8s %12s %12s %10s %8s %14s\n", "shape", "wire", "tokens/s", "vs h=0",
               "sent B/tok", "min B/tok", "x min", "dropped", "x min(kept)");
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Shape& shape = shapes[i];
    const Measured& m = results[i];
    // Every routed token both ways; "kept": only the tokens the experts admitted travel.
    const double minimum = 2.0 * model->d_model * (absl::string_view(shape.wire) == "bf16" ? 2 : 4) * switch_layers;
    const double kept_minimum = minimum * (1 - m.dropped_frac);
    std::string sent = "-", min_text = "-", ratio = "-", kept_ratio = "-";
    if (m.bytes_per_token) {
      sent = absl::StrFormat("%.0f", *m.bytes_per_token);
      min_text = absl::StrFormat("%.0f", minimum);
      ratio = absl::StrFormat("%.2f", *m.bytes_per_token / minimum);
      kept_ratio = absl::StrFormat("%.2f", *m.bytes_per_token / kept_minimum);
    }
    absl::PrintF("%-24s %5s %10.0f %8.3f %12s %12s %10s %7.1f%% %14s\n", shape.name, shape.wire, m.tokens_per_s,
                 m.tokens_per_s / results[0].tokens_per_s, sent, min_text, ratio, 100 * m.dropped_frac, kept_ratio);
  }
  absl::PrintF(
      "(sent B/tok: mean bytes_sent per step in metrics.jsonl, i.e. every trainer's requests: expert buckets,\n"
      " dense gradient pushes and parameter pulls, headers included, over tokens per step. min B/tok: 2 x d_model\n"
      " x dtype per Switch layer; dropped: mean share of routed tokens over capacity, which never travel.\n"
      " Runs kept in %s)\n",
      workdir);
  return 0;
}
