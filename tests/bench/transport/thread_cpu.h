// Where a round trip's CPU time goes, thread by thread: transport_bench reads each
// process's threads from /proc (time on CPU from schedstat, the name from comm) before
// and after a run, for its own process and its echo server's. Threads are told apart by
// name (Switchyard names its own: sy-io, sy-rpc-timers, ...; libzmq's are ZMQbg/...), and
// threads of one name in one process are summed.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace sy::transport {

// Seconds on CPU so far of each thread name of process `pid` (empty if it is gone).
std::map<std::string, double> ThreadCpuSeconds(pid_t pid);

// CPU seconds by "process/thread" name, added up over the runs measured with it.
class ThreadCpuTally {
 public:
  // `processes`: each process's label and pid; call Start, run, then Stop.
  explicit ThreadCpuTally(std::vector<std::pair<std::string, pid_t>> processes);
  void Start();
  void Stop(int round_trips);

  double round_trips() const { return round_trips_; }
  // Microseconds per round trip of each "process/thread" seen busy.
  std::map<std::string, double> MicrosPerRoundTrip() const;

 private:
  std::vector<std::pair<std::string, pid_t>> processes_;
  std::vector<std::map<std::string, double>> started_;
  std::map<std::string, double> seconds_;
  double round_trips_ = 0;
};

}  // namespace sy::transport
