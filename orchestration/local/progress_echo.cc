// Echo of the leading trainer's progress lines (see progress_echo.h).
#include "orchestration/local/progress_echo.h"

#include <unistd.h>

#include <fstream>
#include <iostream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

namespace sy::local {

ProgressEcho::ProgressEcho(std::string log_path, std::ostream& out)
    : log_path_(std::move(log_path)), out_(out), terminal_(&out == &std::cout && isatty(1)) {}

void ProgressEcho::Pump() {
  std::ifstream in(log_path_, std::ios::binary);
  if (!in) return;
  in.seekg(offset_);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // an unfinished line: read it again next time
    offset_ += line.size() + 1;
    if (!absl::StartsWith(line, "step ")) continue;
    const std::string number = line.substr(5, line.find('/') - 5);
    if (int64_t step; absl::SimpleAtoi(number, &step)) last_step_ = step;
    if (terminal_) {
      out_ << "\r" << line << "\033[K" << std::flush;
      open_line_ = true;
    } else {
      out_ << line << "\n" << std::flush;
    }
  }
}

void ProgressEcho::Follow(std::string log_path) {
  Pump();
  log_path_ = std::move(log_path);
  offset_ = 0;
}

void ProgressEcho::Finish() {
  Pump();
  if (open_line_) out_ << "\n";
  open_line_ = false;
}

}  // namespace sy::local
