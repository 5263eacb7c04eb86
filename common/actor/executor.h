// The executor interface actors run on: strands (serial task queues) and a
// clock with timers. Two implementations: sy::actor::Runtime (Boost.Asio thread
// pool, real time) and sy::actor::DeterministicExecutor (one thread, manual
// clock, stepped by unit tests). An Actor runs unchanged on either.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace sy::actor {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;
using Task = std::function<void()>;
using TimerId = uint64_t;

// Tasks posted to one strand run one at a time, in posting order, never
// concurrently with each other (they may run on different threads).
class Strand {
 public:
  virtual ~Strand() = default;
  // After the executor has shut down the task is destroyed without running.
  virtual void Post(Task task) = 0;
};

class Executor {
 public:
  virtual ~Executor() = default;

  virtual std::shared_ptr<Strand> NewStrand() = 0;
  virtual TimePoint Now() const = 0;
  // Runs `task` once, at or after `when`, on an executor thread, NOT serialised
  // with any strand (post to a strand from it when that matters). Timers that
  // are pending at shutdown never run.
  virtual TimerId ScheduleAt(TimePoint when, Task task) = 0;
  // True when the timer was pending and now will not run; false when it has
  // already run (or is running), or the id is unknown.
  virtual bool Cancel(TimerId id) = 0;
  // True once the executor has shut down: posted tasks and timers are dropped.
  virtual bool IsShutDown() const = 0;
};

}  // namespace sy::actor
