// Fork-join thread pool used by the CPU backend (see thread_pool.h).
#include "gpu/cpu/thread_pool.h"

#include <immintrin.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "common/base/thread_name.h"

namespace sy::gpu {

ThreadPool::ThreadPool(int num_threads) : num_threads_(std::max(1, num_threads)) {
  for (int i = 1; i < num_threads_; ++i) {
    workers_.emplace_back([this, i] {
      base::NameThisThread("sy-pool");
      Worker(i);
    });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {
// Chunk c of `chunks` over [0, n).
void ChunkRange(int64_t n, int chunks, int c, int64_t* begin, int64_t* end) {
  *begin = n * c / chunks;
  *end = n * (c + 1) / chunks;
}

// How long a worker waits for the next loop, and a caller for its workers, before
// sleeping (kSpin): longer than the gap between a step's loops, short enough that a
// thread whose work stopped (the trainer waits for its hosts) soon gives its core back.
// After kYieldAfter of it, each turn yields the core: where the machine has more
// runnable threads than cores, the thread waited for may need this one. (A 2x2 cluster
// at --threads=2 on 2 cores, means of 4-6 runs: 12,000 tokens/s spinning without
// yielding, 13,400 sleeping at once, 13,900 like this; the standalone trainer on 2
// threads gains 10-18% over sleeping at once either way.)
constexpr std::chrono::microseconds kSpin(50), kYieldAfter(5);

// Spins until done() or kSpin has passed; done()'s value.
template <typename Done>
bool SpinUntil(Done&& done) {
  const auto start = std::chrono::steady_clock::now();
  while (true) {
    for (int i = 0; i < 32; ++i) {
      if (done()) return true;
      _mm_pause();
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    if (waited >= kSpin) return done();
    if (waited >= kYieldAfter) sched_yield();
  }
}

// The pool whose body this thread is running, if any: a nested loop runs inline.
thread_local const ThreadPool* running_pool = nullptr;

void RunChunk(const ThreadPool* pool, const std::function<void(int64_t, int64_t)>& body, int64_t begin,
              int64_t end) {
  running_pool = pool;
  body(begin, end);
  running_pool = nullptr;
}
}  // namespace

void ThreadPool::ParallelFor(int64_t n, int64_t min_per_thread,
                             const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  const int64_t by_size = std::max<int64_t>(1, n / std::max<int64_t>(1, min_per_thread));
  const int chunks = static_cast<int>(std::min<int64_t>(num_threads_, by_size));
  if (chunks <= 1 || running_pool == this) {
    body(0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    body_ = &body;
    n_ = n;
    chunks_ = chunks;
    pending_ = chunks - 1;
    ++generation_;
  }
  start_cv_.notify_all();  // no system call unless a worker sleeps
  int64_t begin, end;
  ChunkRange(n, chunks, 0, &begin, &end);
  RunChunk(this, body, begin, end);
  SpinUntil([&] { return pending_.load(std::memory_order_acquire) == 0; });
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ == 0; });
  body_ = nullptr;
}

bool ThreadPool::InsideBody() const { return running_pool == this; }

void ThreadPool::ForEachIndex(int64_t n, const std::function<void(int64_t)>& task) {
  std::atomic<int64_t> next{0};
  ParallelFor(std::min<int64_t>(n, num_threads_), 1, [&](int64_t, int64_t) {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) task(i);
  });
}

void ThreadPool::Worker(int index) {
  int64_t seen = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (!stop_ && generation_ == seen) {
      lock.unlock();
      SpinUntil([&] { return generation_.load(std::memory_order_acquire) != seen; });
      lock.lock();
    }
    start_cv_.wait(lock, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || generation_ != seen;
    });
    if (stop_) return;
    seen = generation_;
    if (index >= chunks_) continue;
    const auto* body = body_;
    int64_t begin, end;
    ChunkRange(n_, chunks_, index, &begin, &end);
    lock.unlock();
    RunChunk(this, *body, begin, end);
    lock.lock();
    if (--pending_ == 0) done_cv_.notify_all();  // no system call unless the caller sleeps
  }
}

}  // namespace sy::gpu
