// The checks of a trainer's and an expert host's cluster options (see cluster_options.h).
#include "services/cluster/cluster_options.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/flags/flags.h"

namespace sy::cluster {
namespace {

// A deadline in seconds: (0, one day].
absl::Status CheckSeconds(absl::string_view name, double seconds) {
  return flags::FirstFailure(
      {flags::RequirePositive(name, seconds), flags::RequireInRange(name, seconds, 0.0, 86400.0)});
}

// --emulate_device_gflops: 0 (off) or a finite positive rate.
absl::Status CheckDeviceGflops(double gflops) {
  if (std::isfinite(gflops) && gflops >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--emulate_device_gflops=", gflops,
                                                 ": expected a finite number of GFLOP/s >= 0 (0: no emulation)"));
}

}  // namespace

absl::Status CheckClusterTrainerOptions(const ClusterTrainerOptions& o) {
  if (absl::Status s = flags::FirstFailure({
          flags::RequireNonNegative("trainer_index", int64_t{o.trainer_index}),
          flags::RequirePositive("num_trainers", int64_t{o.num_trainers}),
          CheckSeconds("rpc_timeout_s", o.rpc_timeout_s),
          flags::RequireNonNegative("resume_step", int64_t{o.resume_step}),
          CheckSeconds("recovery_timeout_s", o.recovery_timeout_s),
          CheckTrainerOptions(o.base, /*require_run_flags=*/true),
      });
      !s.ok()) {
    return s;
  }
  if (o.base.standalone) return absl::OkStatus();
  if (o.hosts.empty()) {
    return absl::InvalidArgumentError("--hosts=EP1,EP2,... is required (or --standalone for one process)");
  }
  if (o.resume_step >= o.base.steps) {
    return absl::InvalidArgumentError(
        absl::StrCat("--resume_step=", o.resume_step, " leaves nothing to train (--steps=", o.base.steps, ")"));
  }
  if (o.trainer_index >= o.num_trainers) {
    return absl::InvalidArgumentError(
        absl::StrCat("--trainer_index=", o.trainer_index, " must be below --num_trainers=", o.num_trainers));
  }
  return absl::OkStatus();
}

absl::Status CheckHostOptions(const HostOptions& o) {
  if (absl::Status s = flags::FirstFailure({
          flags::RequireNonNegative("host_index", int64_t{o.host_index}),
          flags::RequirePositive("num_hosts", int64_t{o.num_hosts}),
          CheckSeconds("step_timeout_s", o.step_timeout_s),
          flags::RequireInRange("metrics_port", int64_t{o.metrics_port}, -1, 65535),
          flags::RequireNonNegative("checkpoint_every", int64_t{o.checkpoint_every}),
          flags::RequireNonNegative("fail_checkpoint_at_step", o.fail_checkpoint_at_step.value_or(0)),
          flags::RequireNonNegative("kill_self_while_streaming_at_step", o.kill_self_while_streaming_at_step.value_or(0)),
          flags::RequireNonNegative("kill_self_at_apply_of_step", o.kill_self_at_apply_of_step.value_or(0)),
          CheckDeviceGflops(o.emulate_device_gflops),
          o.kill_self_in_live_move.empty() || o.kill_self_in_live_move == "source" ||
                  o.kill_self_in_live_move == "destination"
              ? absl::OkStatus()
              : absl::InvalidArgumentError(absl::StrCat("--kill_self_in_live_move=", o.kill_self_in_live_move,
                                                        ": source, destination or empty")),
          CheckTrainerOptions(o.model, /*require_run_flags=*/false),
      });
      !s.ok()) {
    return s;
  }
  if (o.host_index >= o.num_hosts) {
    return absl::InvalidArgumentError(
        absl::StrCat("--host_index=", o.host_index, " must be below --num_hosts=", o.num_hosts));
  }
  if (o.listen.empty()) return absl::InvalidArgumentError("--listen needs an endpoint, e.g. tcp://127.0.0.1:0");
  if (o.advertise_host.find_first_of(":/ ") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--advertise_host=", o.advertise_host,
                                                   ": expected a host name or IPv4 address (no scheme, no port)"));
  }
  return absl::OkStatus();
}

}  // namespace sy::cluster
