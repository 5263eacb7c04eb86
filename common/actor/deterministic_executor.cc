// Single-threaded, manually clocked Executor for deterministic actor tests.
#include "common/actor/deterministic_executor.h"

namespace sy::actor {

class DeterministicExecutor::QueueStrand final : public Strand {
 public:
  explicit QueueStrand(DeterministicExecutor* executor) : executor_(executor) {}
  void Post(Task task) override { executor_->Enqueue(std::move(task)); }

 private:
  DeterministicExecutor* executor_;
};

DeterministicExecutor::DeterministicExecutor(TimePoint start) : now_(start) {}

std::shared_ptr<Strand> DeterministicExecutor::NewStrand() {
  return std::make_shared<QueueStrand>(this);
}

TimePoint DeterministicExecutor::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

void DeterministicExecutor::Enqueue(Task task) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(task));
}

TimerId DeterministicExecutor::ScheduleAt(TimePoint when, Task task) {
  absl::MutexLock lock(&mu_);
  const TimerId id = next_timer_id_++;
  timers_.emplace(std::make_pair(when, id), std::move(task));
  return id;
}

bool DeterministicExecutor::Cancel(TimerId id) {
  absl::MutexLock lock(&mu_);
  for (auto it = timers_.begin(); it != timers_.end(); ++it) {
    if (it->first.second == id) {
      timers_.erase(it);
      return true;
    }
  }
  return false;
}

bool DeterministicExecutor::RunOne() {
  Task task;
  {
    absl::MutexLock lock(&mu_);
    if (queue_.empty()) return false;
    task = std::move(queue_.front());
    queue_.pop_front();
  }
  task();
  return true;
}

size_t DeterministicExecutor::RunUntilIdle() {
  size_t ran = 0;
  while (RunOne()) ++ran;
  return ran;
}

size_t DeterministicExecutor::AdvanceTime(Duration d) {
  size_t ran = RunUntilIdle();
  TimePoint target;
  {
    absl::MutexLock lock(&mu_);
    target = now_ + d;
  }
  while (true) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      if (timers_.empty() || timers_.begin()->first.first > target) {
        now_ = target;
        break;
      }
      auto first = timers_.begin();
      now_ = first->first.first;
      task = std::move(first->second);
      timers_.erase(first);
    }
    task();
    ran += 1 + RunUntilIdle();
  }
  return ran;
}

size_t DeterministicExecutor::queued_tasks() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

size_t DeterministicExecutor::pending_timers() const {
  absl::MutexLock lock(&mu_);
  return timers_.size();
}

}  // namespace sy::actor
