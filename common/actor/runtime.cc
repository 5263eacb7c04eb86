// Boost.Asio implementation of the actor Executor.
#include "common/actor/runtime.h"

#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "common/base/thread_name.h"
#include "common/log/log.h"

namespace sy::actor {

namespace asio = boost::asio;

class Runtime::AsioStrand final : public Strand {
 public:
  AsioStrand(asio::io_context& io, std::shared_ptr<Flags> flags)
      : strand_(asio::make_strand(io)), flags_(std::move(flags)) {}

  void Post(Task task) override {
    if (flags_->stopped.load()) return;  // `task` is destroyed here
    asio::post(strand_, [flags = flags_, task = std::move(task)] {
      if (!flags->discard.load()) task();
    });
  }

 private:
  asio::strand<asio::io_context::executor_type> strand_;
  std::shared_ptr<Flags> flags_;
};

Runtime::Runtime(int num_threads)
    : io_(num_threads),
      work_(std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
          io_.get_executor())) {
  SY_CHECK(num_threads >= 1) << "Runtime needs at least one thread, got " << num_threads;
  threads_.reserve(num_threads);
  for (int i = 0; i < num_threads; ++i) {
    threads_.emplace_back([this] {
      base::NameThisThread("sy-actors");
      io_.run();
    });
  }
}

Runtime::~Runtime() { Shutdown(ShutdownMode::kCancel); }

std::shared_ptr<Strand> Runtime::NewStrand() { return std::make_shared<AsioStrand>(io_, flags_); }

TimerId Runtime::ScheduleAt(TimePoint when, Task task) {
  auto timer = std::make_shared<asio::steady_timer>(io_, when);
  TimerId id;
  {
    absl::MutexLock lock(&timers_mu_);
    id = next_timer_id_++;
    if (!accepting_timers_) return id;  // shutting down: the task never runs
    timers_.emplace(id, timer);
  }
  timer->async_wait([this, id, flags = flags_, task = std::move(task)](
                        const boost::system::error_code& ec) {
    {
      absl::MutexLock lock(&timers_mu_);
      // Cancel() erases the entry before cancelling: a missing entry means
      // cancelled even when the wait itself had already completed.
      if (timers_.erase(id) == 0) return;
    }
    if (ec || flags->discard.load()) return;
    task();
  });
  return id;
}

bool Runtime::Cancel(TimerId id) {
  std::shared_ptr<asio::steady_timer> timer;
  {
    absl::MutexLock lock(&timers_mu_);
    auto it = timers_.find(id);
    if (it == timers_.end()) return false;
    timer = std::move(it->second);
    timers_.erase(it);
  }
  timer->cancel();
  return true;
}

void Runtime::CancelAllTimers() {
  absl::flat_hash_map<TimerId, std::shared_ptr<asio::steady_timer>> timers;
  {
    absl::MutexLock lock(&timers_mu_);
    accepting_timers_ = false;
    timers.swap(timers_);
  }
  for (auto& [id, timer] : timers) timer->cancel();
}

void Runtime::Shutdown(ShutdownMode mode) {
  if (shutdown_started_.exchange(true)) return;
  for (const std::thread& thread : threads_) {
    SY_CHECK(thread.get_id() != std::this_thread::get_id())
        << "Runtime::Shutdown called from one of its own threads";
  }
  if (mode == ShutdownMode::kCancel) flags_->discard.store(true);
  CancelAllTimers();
  work_.reset();  // run() returns once the queue is empty
  for (std::thread& thread : threads_) thread.join();
  flags_->stopped.store(true);
  flags_->discard.store(true);
}

}  // namespace sy::actor
