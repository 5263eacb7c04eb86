// The local cluster: starts sy-coordinator (unless --coordinator=false), expert
// hosts and trainers as processes on loopback
// (or one standalone trainer with --hosts=0), waits for the hosts' ready files,
// runs the trainers to completion (adding a host or draining one on the way
// with --add_host_at_step / --drain_host_at_step), stops the hosts cleanly and
// prints the run's summary. On any process failure it stops the rest (SIGTERM, then SIGKILL after
// the grace period) and returns an error naming the process, its exit status
// and the tail of its log. Not thread-safe: one run per call, driven by the
// calling thread; `stop` may be set from a signal handler.
//
//   std::atomic<bool> stop{false};
//   absl::Status s = RunLocalCluster(options, std::cout, stop);
#pragma once

#include <atomic>
#include <ostream>

#include "absl/status/status.h"
#include "orchestration/local/launcher_options.h"

namespace sy::local {

// Runs the cluster described by `o`. OK when every trainer exited 0 and every
// host stopped cleanly; Aborted when a process failed; DeadlineExceeded when a
// host's ready file or the whole run (--timeout_s) took too long;
// FailedPrecondition when the workdir or a process cannot be created;
// Cancelled when `stop` was set. Every process has ended when it returns.
// Trainer 0's progress lines are echoed to `out`, then the summary.
absl::Status RunLocalCluster(const LauncherOptions& o, std::ostream& out, const std::atomic<bool>& stop);

}  // namespace sy::local
