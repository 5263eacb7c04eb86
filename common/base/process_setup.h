// Debian's Abseil is built without NDEBUG, so by default every absl::Mutex lock and
// unlock also updates a process-wide lock-order graph (deadlock detection: a debugging
// aid that costs each lock a trip through one global lock). Binaries and benchmarks turn
// it off at start; tests keep it, so a lock-order cycle still fails them.
#pragma once

#include "absl/synchronization/mutex.h"

namespace sy::base {

inline void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace sy::base
