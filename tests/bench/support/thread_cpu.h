// Where the CPU time goes, thread by thread, read from /proc (time on CPU from schedstat,
// the name from comm): transport_bench reads its own process and its echo server's before
// and after a run (ThreadCpuTally); cluster_bench samples the processes a run starts
// while it runs (ChildThreadCpuSampler). Threads are told apart by name (Switchyard names
// its own: sy-io, sy-actors, sy-pool, ...; libzmq's are ZMQbg/...), and the threads of one
// name in one process are summed.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sy::bench {

// Seconds on CPU so far of each thread name of process `pid` (empty if it is gone).
std::map<std::string, double> ThreadCpuSeconds(pid_t pid);

// CPU seconds by "process/thread" name, added up over the runs measured with it.
class ThreadCpuTally {
 public:
  // `processes`: each process's label and pid; call Start, run, then Stop.
  explicit ThreadCpuTally(std::vector<std::pair<std::string, pid_t>> processes);
  void Start();
  void Stop(int round_trips);

  // Microseconds per round trip of each "process/thread" seen busy.
  std::map<std::string, double> MicrosPerRoundTrip() const;

 private:
  std::vector<std::pair<std::string, pid_t>> processes_;
  std::vector<std::map<std::string, double>> started_;
  std::map<std::string, double> seconds_;
  double round_trips_ = 0;
};

// Samples this process's child processes every `period_ms` from construction until Stop,
// keeping each thread's last time on CPU: a run's processes end before it returns, and
// /proc forgets them then. A thread's last period before its process ended is lost.
class ChildThreadCpuSampler {
 public:
  explicit ChildThreadCpuSampler(int period_ms = 200);
  ~ChildThreadCpuSampler();
  ChildThreadCpuSampler(const ChildThreadCpuSampler&) = delete;
  ChildThreadCpuSampler& operator=(const ChildThreadCpuSampler&) = delete;

  // Stops sampling; CPU seconds by "process/thread" name over every child thread seen.
  std::map<std::string, double> Stop();

 private:
  void Sample();

  const int period_ms_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::map<std::pair<pid_t, pid_t>, std::pair<std::string, double>> seen_;  // (pid, tid) -> name, seconds
  std::thread thread_;  // last: starts after the members it uses exist
};

}  // namespace sy::bench
