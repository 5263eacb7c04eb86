// DeterministicExecutor: an Executor for unit tests. Nothing runs by itself:
// the test steps it. Posted tasks wait in one FIFO queue (so strands are
// trivially serial) and run on the calling thread by RunOne()/RunUntilIdle();
// time moves only through AdvanceTime(), which fires due timers in (time,
// scheduling order) and runs what they post. The same test gives the same
// interleaving every run.
//
// Posting and scheduling are thread-safe; stepping (RunOne, RunUntilIdle,
// AdvanceTime) must come from one thread at a time.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "common/actor/executor.h"

namespace sy::actor {

class DeterministicExecutor final : public Executor {
 public:
  explicit DeterministicExecutor(TimePoint start = TimePoint());

  std::shared_ptr<Strand> NewStrand() override;
  TimePoint Now() const override;
  TimerId ScheduleAt(TimePoint when, Task task) override;
  bool Cancel(TimerId id) override;
  bool IsShutDown() const override { return false; }  // it never shuts down

  // Runs the oldest queued task; false when the queue was empty.
  bool RunOne();
  // Runs tasks until the queue is empty (time does not move); returns how many ran.
  size_t RunUntilIdle();
  // Moves the clock forward by `d`: each timer due by then fires at its due
  // time (Now() reads that time), followed by RunUntilIdle(). Returns the
  // number of timers fired plus tasks run.
  size_t AdvanceTime(Duration d);

  size_t queued_tasks() const;
  size_t pending_timers() const;

 private:
  class QueueStrand;
  void Enqueue(Task task);

  mutable absl::Mutex mu_;
  TimePoint now_ ABSL_GUARDED_BY(mu_);
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  TimerId next_timer_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Ordered by (due time, id): equal due times fire in scheduling order.
  std::map<std::pair<TimePoint, TimerId>, Task> timers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sy::actor
