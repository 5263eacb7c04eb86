// syctl top: the refresh loop and the terminal's keyboard (see top_view.h).
#include "services/syctl/top_view.h"

#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sy::syctl {
namespace {

constexpr std::chrono::milliseconds kRefreshInterval{1000};
constexpr char kClearScreen[] = "\033[H\033[2J";
constexpr char kCtrlC = 3;

// Stdin as a keyboard while the view runs: no line buffering, no echo, Ctrl-C as a key
// (so the terminal is always restored); nothing changes when stdin is not a terminal.
class Keyboard {
 public:
  Keyboard() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    is_terminal_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~Keyboard() {
    if (is_terminal_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  Keyboard(const Keyboard&) = delete;
  Keyboard& operator=(const Keyboard&) = delete;

  // Waits `wait`; true as soon as q or Ctrl-C is pressed.
  bool QuitWithin(std::chrono::milliseconds wait) const {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd stdin_fd{STDIN_FILENO, POLLIN, 0};
      // Not a terminal: nothing to read, just the wait.
      const int ready = poll(is_terminal_ ? &stdin_fd : nullptr, is_terminal_ ? 1 : 0, static_cast<int>(left.count()));
      if (ready <= 0 || !is_terminal_) continue;
      char key = 0;
      if (read(STDIN_FILENO, &key, 1) == 1 && (key == 'q' || key == 'Q' || key == kCtrlC)) return true;
    }
  }

 private:
  termios saved_{};
  bool is_terminal_ = false;
};

// One frame: the header and the status, hosts and experts tables (or their errors).
int RenderFrame(const Invocation& inv, int64_t refresh, std::ostream& frame) {
  frame << "syctl top: " << inv.coordinator << "  refresh " << refresh << "  (q or Ctrl-C quits)\n\n";
  int code = kExitOk;
  for (const char* listing : {"status", "hosts", "experts"}) {
    Invocation call = inv;
    call.words = {listing};
    call.options.clear();
    const int listing_code = RunCommand(call, frame, frame);
    if (listing_code != kExitOk) code = listing_code;
    frame << "\n";
  }
  return code;
}

}  // namespace

int RunTop(const Invocation& inv, std::ostream& out, std::ostream& err) {
  if (absl::Status usage = ExpectArguments(inv, 0, {"iterations"}); !usage.ok()) {
    return Usage(std::string(usage.message()), err);
  }
  if (inv.json) return Usage("'top' is a view for people: it has no --json (use status, hosts, experts)", err);
  int64_t iterations = 0;  // 0: until q or Ctrl-C
  if (const auto it = inv.options.find("iterations"); it != inv.options.end()) {
    if (!absl::SimpleAtoi(it->second, &iterations) || iterations < 1) {
      return Usage(absl::StrCat("--iterations needs a positive number of refreshes, got '", it->second, "'"), err);
    }
  }
  const Keyboard keyboard;
  int code = kExitOk;
  for (int64_t refresh = 1; iterations == 0 || refresh <= iterations; ++refresh) {
    std::ostringstream frame;
    code = RenderFrame(inv, refresh, frame);
    out << kClearScreen << frame.str() << std::flush;
    if (refresh == iterations) break;
    if (keyboard.QuitWithin(kRefreshInterval)) break;
  }
  return code;
}

}  // namespace sy::syctl
