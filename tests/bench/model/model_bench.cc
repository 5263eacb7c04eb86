// model_bench: the standalone trainer's achieved GFLOP/s against what the same machine
// does without it, two ways, in the same run:
//  - against a bare cblas_sgemm of the model's own GEMM shapes (model_gemms.h) on the
//    same threads, each timed step followed by one baseline pass with that step's kept
//    tokens: `ratio mfu_vs_sgemm X` (median model GFLOP/s over median sgemm GFLOP/s);
//  - against the same model written in PyTorch as a user would (model_bench_torch.py,
//    Debian's torch through /usr/bin/python3), same threads, batch, shapes, corpus and
//    number of timed steps: `ratio vs_pytorch X` (Switchyard tokens/s over PyTorch
//    tokens/s, median steps).
//    PyTorch runs twice, with OpenMP's default (spinning) wait policy and with
//    OMP_WAIT_POLICY=PASSIVE, and the ratio takes the faster: on a machine whose
//    cores are shared, spinning OpenMP barriers can slow it several times over.
// FLOPs count the GEMMs only (attention, FFN or experts, router, logits), forward plus
// backward; layer norms, softmax, GELU and the optimizer are not counted.
// Switchyard is measured in steady state: it trains --steps steps and times those that
// dropped under 5% of their routed tokens (the router has balanced; the default 240
// steps leave dozens with the default model and tinyshakespeare). PyTorch's router
// does not balance in as many steps (it dropped about half of its tokens in them, and
// skips the dropped tokens, so it does less work per token); its dropped share is
// printed beside it.
//
//   build/bin/model_bench [--steps=240] [--data=FILE] [--workdir=DIR] [model/training flags, e.g. --threads=2]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/process_setup.h"
#include "services/cluster/model_flags.h"
#include "services/cluster/model_options.h"
#include "services/trainer/standalone_trainer.h"
#include "tests/bench/cluster/bench_args.h"
#include "tests/bench/model/model_gemms.h"

namespace {

struct PyTorchRun {
  double tokens_per_s = 0;
  double dropped_frac = 0;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The PyTorch side's median tokens/s and mean dropped share (its output lines
// "tokens_per_s X" and "dropped X"), `steps` steps on `data`, run with `environment`
// ("NAME=VALUE " settings, or empty) before the command.
absl::StatusOr<PyTorchRun> RunPyTorch(const sy::cluster::TrainerOptions& o, int64_t steps, const std::string& data,
                                      const std::string& environment) {
  const std::string command = absl::StrCat(
      environment, "/usr/bin/python3 ", MODEL_BENCH_TORCH_SCRIPT, " --layers=", o.layers, " --d_model=", o.d_model,
      " --heads=", o.heads, " --d_ff=", o.d_ff, " --experts=", o.experts, " --moe_every=", o.moe_every,
      " --context=", o.context, " --micro_batch=", o.micro_batch, " --micro_batches=", o.micro_batches,
      " --capacity_factor=", o.capacity_factor, " --lb_alpha=", o.lb_alpha, " --z_beta=", o.z_beta,
      " --threads=", o.threads, " --steps=", steps, " --data='", data, "' 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("cannot start " + command);
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  PyTorchRun run;
  const size_t tokens_at = output.rfind("tokens_per_s ");
  const size_t dropped_at = output.rfind("dropped ");
  if (status != 0 || tokens_at == std::string::npos || dropped_at == std::string::npos ||
      std::sscanf(output.c_str() + tokens_at, "tokens_per_s %lf", &run.tokens_per_s) != 1 ||
      std::sscanf(output.c_str() + dropped_at, "dropped %lf", &run.dropped_frac) != 1) {
    return absl::InternalError(absl::StrCat("the PyTorch side failed (", command, "):\n", output));
  }
  return run;
}

int Run(const sy::bench::BenchArgs& args) {
  absl::StatusOr<sy::cluster::TrainerOptions> options = sy::cluster::ParseModelFlags(args.model_flags);
  absl::StatusOr<sy::gpu::ModelConfig> config =
      options.ok() ? sy::cluster::ModelConfigFromOptions(*options) : options.status();
  if (!config.ok()) {
    std::cerr << "model_bench: " << config.status() << "\n";
    return 2;
  }
  options->standalone = true;
  options->data = args.data;
  options->steps = args.steps;
  if (options->threads <= 0) options->threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  absl::StatusOr<std::unique_ptr<sy::trainer::StandaloneTrainer>> trainer =
      sy::trainer::StandaloneTrainer::Create(*options);
  if (!trainer.ok()) {
    std::cerr << "model_bench: " << trainer.status() << "\n";
    return 1;
  }
  const int64_t tokens_per_step = int64_t{options->micro_batch} * options->micro_batches * options->context;
  std::vector<double> step_s, model_gflops, sgemm_gflops;
  double dropped_sum = 0;
  int64_t first_counted = 0;
  for (int64_t step = 1; step <= args.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<sy::trainer::StepMetrics> metrics = (*trainer)->TrainStep(step);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!metrics.ok()) {
      std::cerr << "model_bench: step " << step << ": " << metrics.status() << "\n";
      return 1;
    }
    if (step % 20 == 0) {
      std::cerr << "model_bench: step " << step << "/" << args.steps << ", dropped "
                << absl::StrFormat("%.1f%%", 100 * metrics->dropped_frac) << ", " << step_s.size()
                << " steps counted\n";
    }
    if (step == 1 || metrics->dropped_frac >= sy::bench::kSteadyMaxDropped) continue;  // warm-up, or not balanced
    // The step's micro-batches, each with the step's share of kept tokens.
    const std::vector<sy::bench::Gemm> micro_batch_gemms =
        sy::bench::ForwardGemms(*config, options->micro_batch, 1 - metrics->dropped_frac);
    std::vector<sy::bench::Gemm> gemms;
    for (int m = 0; m < options->micro_batches; ++m) {
      gemms.insert(gemms.end(), micro_batch_gemms.begin(), micro_batch_gemms.end());
    }
    const double flops = sy::bench::TrainingFlops(gemms);
    const double sgemm_s = sy::bench::TimeSgemmPass(gemms, options->threads);
    if (step_s.empty()) first_counted = step;
    step_s.push_back(seconds);
    dropped_sum += metrics->dropped_frac;
    model_gflops.push_back(flops / seconds / 1e9);
    sgemm_gflops.push_back(flops / sgemm_s / 1e9);
  }
  const int counted = static_cast<int>(step_s.size());
  if (counted < sy::bench::kSteadyMinSteps) {
    std::cerr << "model_bench: only " << counted << " of " << args.steps << " steps dropped under "
              << 100 * sy::bench::kSteadyMaxDropped << "% of their tokens (at least " << sy::bench::kSteadyMinSteps
              << " needed): the router has not balanced yet, run more --steps\n";
    return 1;
  }
  const double tokens_per_s = tokens_per_step / Median(step_s);
  // PyTorch times as many steps as were counted here, after its own warm-up step.
  absl::StatusOr<PyTorchRun> torch_spinning = RunPyTorch(*options, counted + 1, args.data, "");
  absl::StatusOr<PyTorchRun> torch_passive =
      RunPyTorch(*options, counted + 1, args.data, "OMP_WAIT_POLICY=PASSIVE ");
  for (const absl::StatusOr<PyTorchRun>* run : {&torch_spinning, &torch_passive}) {
    if (!run->ok()) {
      std::cerr << "model_bench: " << run->status().message() << "\n";
      return 1;
    }
  }
  const double torch_tokens_per_s = std::max(torch_spinning->tokens_per_s, torch_passive->tokens_per_s);
  absl::PrintF("model_bench: %d layers, d_model %d, d_ff %d, %d heads, %d experts every %d, context %d, "
               "%d tokens/step, %d threads, %d cores\n",
               config->layers, config->d_model, config->d_ff, config->heads, config->experts, config->moe_every,
               config->context, tokens_per_step, options->threads, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  absl::PrintF("steady state: %d of %d steps dropped under %.0f%% of their tokens (from step %d), %.1f%% on "
               "average\n",
               counted, args.steps, 100 * sy::bench::kSteadyMaxDropped, first_counted, 100 * dropped_sum / counted);
  absl::PrintF("  Switchyard standalone trainer   : %10.0f tokens/s  %7.1f GFLOP/s (GEMM FLOPs, fwd+bwd)\n",
               tokens_per_s, Median(model_gflops));
  absl::PrintF("  bare cblas_sgemm, same GEMMs    : %10s           %7.1f GFLOP/s\n", "-", Median(sgemm_gflops));
  absl::PrintF("  PyTorch, OpenMP default wait    : %10.0f tokens/s  (dropped %.1f%%)\n", torch_spinning->tokens_per_s,
               100 * torch_spinning->dropped_frac);
  absl::PrintF("  PyTorch, OMP_WAIT_POLICY=PASSIVE: %9.0f tokens/s  (dropped %.1f%%; the faster PyTorch run is the "
               "baseline)\n",
               torch_passive->tokens_per_s, 100 * torch_passive->dropped_frac);
  absl::PrintF("\nratio mfu_vs_sgemm %.3f\nratio vs_pytorch %.3f\n", Median(model_gflops) / Median(sgemm_gflops),
               tokens_per_s / torch_tokens_per_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sy::base::SetUpProcess();
  const sy::bench::BenchArgs args = sy::bench::ParseBenchArgs(
      argc, argv, {"--steps=240", absl::StrCat("--workdir=/tmp/model_bench_", getpid()), "--eval_every=0"},
      /*takes_hosts=*/false, "usage: model_bench [--steps=240] [--data=FILE] [--workdir=DIR] [model/training flags]");
  if (args.steps < 2) {
    std::cerr << "model_bench: --steps must be at least 2 (the first is a warm-up)\n";
    return 2;
  }
  return Run(args);
}
