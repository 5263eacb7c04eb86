// Per-thread CPU time from /proc (see thread_cpu.h).
#include "tests/bench/support/thread_cpu.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

namespace sy::bench {

namespace {

// Calls `each(id, entry)` for every entry of `dir` whose name is a number (a process or a
// thread). Processes end while it reads: it never throws, and one gone is skipped.
template <typename Each>
void ForEachNumbered(const std::filesystem::path& dir, Each&& each) {
  std::error_code error;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.size() > 9 || name.find_first_not_of("0123456789") != std::string::npos) continue;
    each(static_cast<pid_t>(std::stol(name)), it->path());
  }
}

// Calls `each(tid, name, seconds on CPU)` for every thread of process `pid`.
template <typename Each>
void ForEachThread(pid_t pid, Each&& each) {
  ForEachNumbered("/proc/" + std::to_string(pid) + "/task", [&](pid_t tid, const std::filesystem::path& task) {
    std::ifstream comm(task / "comm"), schedstat(task / "schedstat");
    std::string name;
    double on_cpu_ns = 0;
    if (std::getline(comm, name) && (schedstat >> on_cpu_ns)) each(tid, name, on_cpu_ns * 1e-9);
  });
}

// The parent of process `pid` (0 if it is gone): /proc/PID/stat is "pid (comm) state ppid ...",
// and a comm may hold spaces and parentheses, so the fields are read after its last ')'.
pid_t ParentOf(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  const std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 1));
  char state = 0;
  pid_t parent = 0;
  fields >> state >> parent;
  return parent;
}

}  // namespace

std::map<std::string, double> ThreadCpuSeconds(pid_t pid) {
  std::map<std::string, double> seconds;
  ForEachThread(pid, [&](pid_t, const std::string& name, double on_cpu) { seconds[name] += on_cpu; });
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

ChildThreadCpuSampler::ChildThreadCpuSampler(int period_ms)
    : period_ms_(period_ms), thread_([this] {
        std::unique_lock<std::mutex> lock(mu_);
        while (!stop_) {
          lock.unlock();
          Sample();
          lock.lock();
          wake_.wait_for(lock, std::chrono::milliseconds(period_ms_), [this] { return stop_; });
        }
      }) {}

ChildThreadCpuSampler::~ChildThreadCpuSampler() { Stop(); }

void ChildThreadCpuSampler::Sample() {
  const pid_t self = getpid();
  ForEachNumbered("/proc", [&](pid_t pid, const std::filesystem::path& entry) {
    if (ParentOf(pid) != self) return;
    std::ifstream comm_file(entry / "comm");
    std::string process;
    if (!std::getline(comm_file, process)) return;
    ForEachThread(pid, [&](pid_t tid, const std::string& thread, double on_cpu) {
      std::lock_guard<std::mutex> lock(mu_);
      seen_[{pid, tid}] = {process + "/" + thread, on_cpu};
    });
  });
}

std::map<std::string, double> ChildThreadCpuSampler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::map<std::string, double> seconds;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [ids, seen] : seen_) seconds[seen.first] += seen.second;
  return seconds;
}

}  // namespace sy::bench
