// A tiny fork-join pool for the CPU backend's loops: ParallelFor splits [0, n)
// into contiguous chunks, one per thread, and returns when all are done. Each index
// is handled by exactly one thread, so results never depend on the thread count as
// long as the body writes only the outputs of its own indices.
// A step runs thousands of short loops back to back: between two of them a worker,
// and a caller waiting for its workers, spin briefly (yielding the core after the first
// few microseconds) before they sleep, so a loop does not cost a futex wake-up and a
// context switch each way.
// Thread-safety: one ParallelFor at a time (the backend is single-caller). A body
// that calls ParallelFor (or ForEachIndex) of the same pool runs that loop inline on
// its own thread, which gives the same results.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace sy::gpu {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);  // num_threads >= 1 (the caller counts as one)
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }
  // Whether the calling thread is running a body of this pool (a loop it starts runs
  // inline).
  bool InsideBody() const;
  // Calls body(begin, end) on disjoint chunks covering [0, n). Runs inline when n is
  // below min_per_thread * 2 or there is one thread.
  void ParallelFor(int64_t n, int64_t min_per_thread,
                   const std::function<void(int64_t, int64_t)>& body);
  // Calls task(i) once for each i in [0, n), each thread taking the next index as it
  // becomes free, so that uneven tasks balance over the threads.
  void ForEachIndex(int64_t n, const std::function<void(int64_t)>& task);

 private:
  void Worker(int index);

  const int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int64_t, int64_t)>* body_ ABSL_GUARDED_BY(mu_) = nullptr;
  int64_t n_ ABSL_GUARDED_BY(mu_) = 0;
  int chunks_ ABSL_GUARDED_BY(mu_) = 0;
  // Written under mu_; also read without it by a spinning worker (generation_) or
  // caller (pending_), which then takes mu_ before acting on what it saw.
  std::atomic<int64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sy::gpu
