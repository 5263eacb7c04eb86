// fork/exec, reaping and log tails for sy-local's processes (see child_process.h).
#include "orchestration/local/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace sy::local {

absl::StatusOr<ChildProcess> ChildProcess::Start(std::string role, const std::vector<std::string>& argv,
                                                 std::string log_path, bool append) {
  if (argv.empty()) return absl::InvalidArgumentError(absl::StrCat(role, ": empty command line"));
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(role, ": cannot open log ", log_path, ": ", strerror(errno)));
  }
  // The child reports a failed exec through this close-on-exec pipe: EOF means exec succeeded.
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    close(log_fd);
    return absl::FailedPreconditionError(absl::StrCat(role, ": pipe: ", strerror(errno)));
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(log_fd);
    close(report[0]);
    close(report[1]);
    return absl::FailedPreconditionError(absl::StrCat(role, ": fork: ", strerror(err)));
  }
  if (pid == 0) {  // child: async-signal-safe calls only
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);  // sy-local already died
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execv(args[0], args.data());
    const int err = errno;
    ssize_t ignored = write(report[1], &err, sizeof(err));
    (void)ignored;
    _exit(127);
  }
  close(log_fd);
  close(report[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(report[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n > 0) {
    waitpid(pid, nullptr, 0);
    return absl::FailedPreconditionError(
        absl::StrCat(role, ": cannot run ", argv[0], ": ", strerror(exec_errno)));
  }
  return ChildProcess(std::move(role), std::move(log_path), pid);
}

bool ChildProcess::Poll() {
  if (exited_) return true;
  int status = 0;
  struct rusage usage {};
  const pid_t r = wait4(pid_, &status, WNOHANG, &usage);
  if (r == pid_) {
    exited_ = true;
    wait_status_ = status;
    cpu_seconds_ = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                   1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
  } else if (r < 0 && errno == ECHILD) {  // reaped elsewhere: its status is lost
    exited_ = true;
    wait_status_ = W_EXITCODE(255, 0);
  }
  return exited_;
}

bool ChildProcess::Succeeded() const {
  return exited_ && WIFEXITED(wait_status_) && WEXITSTATUS(wait_status_) == 0;
}

bool ChildProcess::KilledBy(int signal) const {
  return exited_ && WIFSIGNALED(wait_status_) && WTERMSIG(wait_status_) == signal;
}

std::string ChildProcess::ExitDescription() const {
  if (!exited_) return "running";
  if (WIFEXITED(wait_status_)) return absl::StrCat("exit status ", WEXITSTATUS(wait_status_));
  if (WIFSIGNALED(wait_status_)) {
    const int sig = WTERMSIG(wait_status_);
    return absl::StrCat("killed by signal ", sig, " (", strsignal(sig), ")");
  }
  return absl::StrCat("wait status ", wait_status_);
}

void ChildProcess::Signal(int signal) const {
  if (!exited_) kill(pid_, signal);
}

std::string TailOfFile(const std::string& path, int max_lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > 65536 ? size - 65536 : 0;
  in.seekg(start);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t cut = text.size();
  for (int lines = 0; lines < max_lines && cut != std::string::npos && cut > 0; ++lines) {
    cut = text.rfind('\n', cut - 1);
  }
  return cut == std::string::npos || cut == text.size() ? text : text.substr(cut + 1);
}

}  // namespace sy::local
