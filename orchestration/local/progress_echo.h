// Copies the leader's progress lines ("step 12/300 | ...") from its log to `out`
// as the log grows: one updating line on a terminal, one line per step otherwise.
// The leader is trainer 0 until it dies; then the next in line (Follow).
// Not thread-safe: one caller polls it.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace sy::local {

class ProgressEcho {
 public:
  ProgressEcho(std::string log_path, std::ostream& out);

  // Echoes the complete lines added to the log since the last call.
  void Pump();

  // The step of the newest progress line (0 before any; lower again after a rollback).
  int64_t last_step() const { return last_step_; }

  // Echoes another trainer's log from its start (it prints progress once it leads).
  void Follow(std::string log_path);

  // Echoes what is left and ends an updating line.
  void Finish();

 private:
  std::string log_path_;
  std::ostream& out_;
  bool terminal_;
  std::streamoff offset_ = 0;
  bool open_line_ = false;
  int64_t last_step_ = 0;
};

}  // namespace sy::local
