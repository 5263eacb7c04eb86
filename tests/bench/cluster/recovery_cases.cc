// The recovery cases of rebalance_bench (see recovery_cases.h).
#include "tests/bench/cluster/recovery_cases.h"

#include <atomic>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "orchestration/local/launcher_flags.h"
#include "orchestration/local/local_cluster.h"
#include "orchestration/local/run_report.h"

namespace sy::bench {
namespace {

constexpr int kCheckpointEvery = 10;
constexpr int kStopSeconds = 6;  // a SIGSTOPped host stays stopped past the 3 s heartbeat timeout

struct Case {
  std::string name;
  std::vector<std::string> flags;  // the fault, and redundancy
  const char* signal_marker;       // sy-local's line naming the signal
};

struct Outcome {
  double detection_s = 0;  // signal -> the coordinator's "failed" line
  double recovery_s = 0;   // summary.json recovery_seconds: detection -> first step after
  int64_t replayed_steps = 0;
  double replay_s = 0;     // the replayed steps after the first: their kept records' step times
};

// The time at the end of sy-local's line that contains `marker` ("... at 2026-...Z").
std::optional<absl::Time> SignalTime(const std::string& out, const std::string& marker) {
  const size_t at = out.find(marker);
  if (at == std::string::npos) return std::nullopt;
  const size_t end = out.find('\n', at);
  const std::string line = out.substr(at, end == std::string::npos ? std::string::npos : end - at);
  const size_t stamp = line.rfind(" at ");
  absl::Time t;
  std::string error;
  if (stamp == std::string::npos || !absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", line.substr(stamp + 4), &t, &error)) {
    return std::nullopt;
  }
  return t;
}

// The time stamp of the coordinator's first line saying a host failed.
std::optional<absl::Time> DetectionTime(const std::string& dir) {
  std::ifstream log(dir + "/coordinator.log");
  for (std::string line; std::getline(log, line);) {
    if (line.find(" failed (") == std::string::npos || line.find("] host host-") == std::string::npos) continue;
    absl::Time t;
    std::string error;
    if (absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", line.substr(0, line.find(' ')), &t, &error)) return t;
  }
  return std::nullopt;
}

absl::StatusOr<Outcome> RunCase(const RecoveryCasesArgs& args, const Case& c, int64_t fault_step) {
  const std::string dir = absl::StrCat(args.workdir, "/recovery_", c.name);
  std::vector<std::string> flags = {absl::StrCat("--hosts=", args.hosts), "--trainers=2",
                                    absl::StrCat("--steps=", args.steps), "--data=" + args.data, "--workdir=" + dir,
                                    absl::StrCat("--checkpoint_every=", kCheckpointEvery), "--timeout_s=600",
                                    "--coordinator_args=--auto_rebalance=false"};
  for (const std::string& f : c.flags) flags.push_back(absl::StrReplaceAll(f, {{"STEP", absl::StrCat(fault_step)}}));
  flags.insert(flags.end(), args.run_flags.begin(), args.run_flags.end());
  absl::StatusOr<local::LauncherOptions> options = local::ParseLauncherOptions(flags);
  if (!options.ok()) return options.status();
  std::cerr << "rebalance_bench: recovery case " << c.name << ", " << args.steps << " steps, fault after step "
            << fault_step << "\n";
  std::ostringstream out;
  std::atomic<bool> stop{false};
  if (absl::Status s = local::RunLocalCluster(*options, out, stop); !s.ok()) {
    return absl::InternalError(absl::StrCat(c.name, ": ", s.message()));
  }
  const std::optional<absl::Time> signalled = SignalTime(out.str(), c.signal_marker);
  const std::optional<absl::Time> detected = DetectionTime(dir);
  if (!signalled || !detected) {
    return absl::InternalError(absl::StrCat(c.name, ": no ", !signalled ? "signal" : "detection", " time in ", dir));
  }
  std::ifstream summary_file(dir + "/summary.json");
  const nlohmann::json summary = nlohmann::json::parse(summary_file, nullptr, /*allow_exceptions=*/false);
  if (summary.is_discarded() || !summary.contains("recovery_seconds") || summary["recovery_seconds"].empty()) {
    return absl::InternalError(absl::StrCat(c.name, ": no recovery_seconds in ", dir, "/summary.json"));
  }
  Outcome o;
  o.detection_s = absl::ToDoubleSeconds(*detected - *signalled);
  o.recovery_s = summary["recovery_seconds"][0].get<double>();
  o.replayed_steps = summary.value("replayed_steps", int64_t{0});
  // recovery_seconds ends with the first step completed after the failure; on the
  // checkpoint path that is a replayed one, and the run is back where it was only after
  // the others: their time is in their records (a replay replaces a step's record).
  absl::StatusOr<local::RunReport> report = local::ReadRunReport(dir);
  if (!report.ok()) return report.status();
  for (const local::StepRecord& r : report->steps) {
    if (r.step > fault_step - o.replayed_steps + 1 && r.step <= fault_step && r.tokens_per_s > 0) {
      o.replay_s += args.tokens_per_step / r.tokens_per_s;
    }
  }
  return o;
}

}  // namespace

absl::Status MeasureRecoveries(const RecoveryCasesArgs& args) {
  const int64_t fault_step = args.steps / 2 + kCheckpointEvery / 2;  // half a checkpoint interval to replay
  const std::vector<Case> cases = {
      {"heartbeat", {"--stop_host_at_step=STEP", absl::StrCat("--stop_host_seconds=", kStopSeconds)}, "SIGSTOP host-"},
      {"fast_detection", {"--kill_host_at_step=STEP"}, "SIGKILL host-"},
      {"redundancy", {"--kill_host_at_step=STEP", "--redundancy=2"}, "SIGKILL host-"}};
  std::vector<Outcome> outcomes;
  for (const Case& c : cases) {
    absl::StatusOr<Outcome> o = RunCase(args, c, fault_step);
    if (!o.ok()) return o.status();
    outcomes.push_back(*o);
  }
  absl::PrintF("\nrecovery: %d hosts x 2 trainers, the last host lost after step %d, a checkpoint every %d steps\n",
               args.hosts, fault_step, kCheckpointEvery);
  absl::PrintF("%-16s %12s %12s %15s %10s %10s\n", "case", "detection s", "recovery s", "replayed steps",
               "replay s", "total s");
  auto total = [&](size_t i) { return outcomes[i].detection_s + outcomes[i].recovery_s + outcomes[i].replay_s; };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Outcome& o = outcomes[i];
    absl::PrintF("%-16s %12.3f %12.3f %15d %10.3f %10.3f\n", cases[i].name, o.detection_s, o.recovery_s,
                 o.replayed_steps, o.replay_s, total(i));
  }
  auto ratio = [](double x, double base) { return base > 0 ? x / base : 0.0; };
  absl::PrintF("(detection: sy-local's signal to the coordinator's \"failed\" line; recovery: summary.json's "
               "recovery_seconds, detection to the first step completed after it; replay: the other replayed "
               "steps' times, until the run is back at step %d; total: the three)\n",
               fault_step);
  absl::PrintF("ratio fast_detection_vs_heartbeat_recovery_time %.4f\n", ratio(total(1), total(0)));
  absl::PrintF("ratio redundancy_vs_heartbeat_recovery_time %.4f\n", ratio(total(2), total(0)));
  absl::PrintF("ratio redundancy_vs_fast_detection_recovery_time %.4f\n", ratio(total(2), total(1)));
  return absl::OkStatus();
}

}  // namespace sy::bench
