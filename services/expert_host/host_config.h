// What an expert host is configured with: the model and optimizer, its place among
// the hosts, the step protocol's M and timeout, checkpoint cadence, and a fault
// injection for tests, and the resource bounds against hostile peers. A plain value shared by the host's parts.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/time/time.h"
#include "gpu/model/config.h"
#include "gpu/model/optimizer.h"
#include "services/expert_host/host_limits.h"

namespace sy::expert_host {

struct HostConfig {
  gpu::ModelConfig model;
  gpu::AdamWConfig adam;
  uint64_t seed = 1;
  int micro_batches = 1;       // M
  int max_bucket_rows = 0;     // tokens of one micro-batch (B*T): no bucket is larger
  int host_index = 0;
  int num_hosts = 1;
  absl::Duration step_timeout = absl::Seconds(60);
  uint64_t checkpoint_every = 0;  // actors keep their state at recent multiples of it (0: none)
  // Fault injection for tests: the experts refuse to stream the checkpoint at this step
  // (dense shards still stream, so the checkpoint is left half-written); unset: never.
  std::optional<uint64_t> fail_checkpoint_at_step;
  HostLimits limits;
  // Fault injection for tests: at the checkpoint of this step the experts hold their state back and the
  // host SIGKILLs itself once a dense shard's state went out; unset: never.
  std::optional<uint64_t> kill_self_while_streaming_at_step;
  // Fault injection for tests: SIGKILL when the apply of this step arrives, before applying it; unset: never.
  std::optional<uint64_t> kill_self_at_apply_of_step;
  // Fault injection for tests: SIGKILL in the first live move, as its "source" or "destination" ("": never).
  std::string kill_self_in_live_move;
  // Benchmarks: > 0 makes each expert bucket take at least its FLOPs / this many GFLOP/s
  // (emulated_device.h); 0: off.
  double emulate_device_gflops = 0;
};

}  // namespace sy::expert_host
