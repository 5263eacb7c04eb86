// How much a process's resident memory grows while a test loads it: RssProbe records
// VmRSS, resets the peak (VmHWM := VmRSS) and samples VmRSS until Stop(), which returns
// the growth to the higher of the sampled peak and VmHWM. Shared by the bounds tests.
// Not thread-safe (one test thread drives it; it owns its sampling thread).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace sy::testing {

// A field of /proc/PID/status in KiB (e.g. "VmRSS"); -1 when unreadable.
int64_t StatusKiB(pid_t pid, const std::string& field);

// Starts the child `argv` (argv[0] a path) and waits (bounded) for it to write `ready_file`;
// returns its pid, the ready file's first word in *endpoint; -1 when it never got ready.
pid_t SpawnUntilReady(const std::vector<std::string>& argv, const std::string& ready_file, std::string* endpoint);

// Sends SIGTERM to `pid` and reaps it.
void Terminate(pid_t pid);

class RssProbe {
 public:
  explicit RssProbe(pid_t pid);
  ~RssProbe();
  int64_t before_kib() const { return before_; }
  // Ends sampling; the growth in KiB since construction (peak and VmHWM, whichever higher).
  int64_t Stop();
  int64_t peak_kib() const { return peak_.load(); }

 private:
  pid_t pid_;
  int64_t before_;
  std::atomic<bool> sampling_{true};
  std::atomic<int64_t> peak_;
  std::thread sampler_;
};

}  // namespace sy::testing
