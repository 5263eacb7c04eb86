// Runtime: the production Executor, a Boost.Asio io_context served by a fixed
// number of threads; every actor gets its own asio strand on it, so one
// actor's messages run one at a time while different actors run in parallel.
//
// Thread-safe. Shutdown() (also run by the destructor) must not be called from
// one of the runtime's own threads. Every actor on the runtime must be
// released before the runtime is destroyed. Once shut down, messages sent to
// actors are dropped and their asks fail with Unavailable at once; asks still
// waiting in a mailbox or held by a Responder fail with Unavailable when the
// actor (or Responder) is released (their deadline timers were cancelled).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/actor/executor.h"

namespace sy::actor {

class Runtime final : public Executor {
 public:
  enum class ShutdownMode {
    kDrain,   // run every queued task (and what they post) to completion; timers are cancelled
    kCancel,  // drop queued tasks without running them; timers are cancelled
  };

  // `num_threads` >= 1 (programmer error otherwise).
  explicit Runtime(int num_threads);
  ~Runtime() override;  // Shutdown(kCancel)
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  std::shared_ptr<Strand> NewStrand() override;
  TimePoint Now() const override { return Clock::now(); }
  TimerId ScheduleAt(TimePoint when, Task task) override;
  bool Cancel(TimerId id) override;
  bool IsShutDown() const override { return flags_->stopped.load(); }

  // Stops the runtime and joins its threads. Idempotent.
  void Shutdown(ShutdownMode mode = ShutdownMode::kDrain);
  int num_threads() const { return static_cast<int>(threads_.size()); }

 private:
  class AsioStrand;
  struct Flags {
    std::atomic<bool> discard{false};  // queued tasks are dropped instead of run
    std::atomic<bool> stopped{false};  // threads joined: posting drops the task
  };

  void CancelAllTimers();

  boost::asio::io_context io_;
  std::shared_ptr<Flags> flags_ = std::make_shared<Flags>();
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::atomic<bool> shutdown_started_{false};

  absl::Mutex timers_mu_;
  TimerId next_timer_id_ ABSL_GUARDED_BY(timers_mu_) = 1;
  bool accepting_timers_ ABSL_GUARDED_BY(timers_mu_) = true;
  absl::flat_hash_map<TimerId, std::shared_ptr<boost::asio::steady_timer>> timers_
      ABSL_GUARDED_BY(timers_mu_);
};

}  // namespace sy::actor
