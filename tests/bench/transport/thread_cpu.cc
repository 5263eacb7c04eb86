// Per-thread CPU time from /proc (see thread_cpu.h).
#include "tests/bench/transport/thread_cpu.h"

#include <filesystem>
#include <fstream>
#include <utility>

namespace sy::transport {

std::map<std::string, double> ThreadCpuSeconds(pid_t pid) {
  std::map<std::string, double> seconds;
  std::error_code error;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
    std::ifstream comm(task.path() / "comm"), schedstat(task.path() / "schedstat");
    std::string name;
    double on_cpu_ns = 0;
    if (std::getline(comm, name) && (schedstat >> on_cpu_ns)) seconds[name] += on_cpu_ns * 1e-9;
  }
  return seconds;
}

ThreadCpuTally::ThreadCpuTally(std::vector<std::pair<std::string, pid_t>> processes)
    : processes_(std::move(processes)) {}

void ThreadCpuTally::Start() {
  started_.clear();
  for (const auto& [label, pid] : processes_) started_.push_back(ThreadCpuSeconds(pid));
}

void ThreadCpuTally::Stop(int round_trips) {
  for (size_t i = 0; i < processes_.size() && i < started_.size(); ++i) {
    for (const auto& [name, seconds] : ThreadCpuSeconds(processes_[i].second)) {
      auto before = started_[i].find(name);
      seconds_[processes_[i].first + "/" + name] += seconds - (before == started_[i].end() ? 0 : before->second);
    }
  }
  round_trips_ += round_trips;
}

std::map<std::string, double> ThreadCpuTally::MicrosPerRoundTrip() const {
  std::map<std::string, double> micros;
  if (round_trips_ <= 0) return micros;
  for (const auto& [name, seconds] : seconds_) {
    const double per = seconds * 1e6 / round_trips_;
    if (per >= 0.05) micros[name] = per;
  }
  return micros;
}

}  // namespace sy::transport
