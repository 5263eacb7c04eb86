// Resident memory of a child process under load (see rss_probe.h).
#include "tests/integration/bounds/rss_probe.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/time/clock.h"

namespace sy::testing {

int64_t StatusKiB(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

pid_t SpawnUntilReady(const std::vector<std::string>& argv, const std::string& ready_file, std::string* endpoint) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (std::string& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  for (int i = 0; i < 600 && !std::filesystem::exists(ready_file); ++i) absl::SleepFor(absl::Milliseconds(100));
  if (!std::filesystem::exists(ready_file)) {
    Terminate(pid);
    return -1;
  }
  std::ifstream(ready_file) >> *endpoint;
  return pid;
}

void Terminate(pid_t pid) {
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

RssProbe::RssProbe(pid_t pid) : pid_(pid), before_(StatusKiB(pid, "VmRSS")), peak_(before_) {
  std::ofstream("/proc/" + std::to_string(pid) + "/clear_refs") << "5";  // VmHWM := VmRSS
  sampler_ = std::thread([this] {
    while (sampling_.load()) {
      peak_.store(std::max(peak_.load(), StatusKiB(pid_, "VmRSS")));
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
}

RssProbe::~RssProbe() { Stop(); }

int64_t RssProbe::Stop() {
  if (sampler_.joinable()) {
    sampling_.store(false);
    sampler_.join();
  }
  return std::max(peak_.load(), StatusKiB(pid_, "VmHWM")) - before_;
}

}  // namespace sy::testing
