// Core accounting for sy-local (see core_split.h).
#include "orchestration/local/core_split.h"

#include <sched.h>

#include <algorithm>
#include <thread>

namespace sy::local {

int AvailableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

int ThreadsPerProcess(int cores, int processes) {
  if (processes <= 0) return std::max(1, cores);
  return std::max(1, cores / processes);
}

}  // namespace sy::local
