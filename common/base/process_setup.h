// What every Switchyard binary and benchmark does first (SetUpProcess), and tests do
// not:
//  - Debian's Abseil is built without NDEBUG, so by default every absl::Mutex lock and
//    unlock also updates a process-wide lock-order graph (deadlock detection: a
//    debugging aid that costs each lock a trip through one global lock). It is turned
//    off; tests keep it, so a lock-order cycle still fails them.
//  - glibc's malloc gives freed memory back to the kernel: it trims the top of a heap
//    once 2x the mmap threshold is free there, and serves big blocks from fresh mmaps.
//    A step allocates and frees the same big buffers every time (buckets, activations,
//    gradients), so each step page-faults them in again: about 10,000 faults a second
//    in an expert host of a 2x2 cluster, and in a VM a fault is dear. Freed memory
//    now stays in the process (up to 1 GiB of free heap top), and blocks up to 32 MiB
//    (glibc's largest mmap threshold) come from the heap: a process keeps the memory
//    of its largest step, which it needs again at the next one.
#pragma once

#include <malloc.h>

#include "absl/synchronization/mutex.h"

namespace sy::base {

inline void SetUpProcess() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace sy::base
