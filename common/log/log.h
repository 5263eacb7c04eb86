// Leveled logging to stderr: one line per message with UTC timestamp, level,
// file:line and thread id, written with a single write() so lines from
// concurrent threads never interleave. Thread-safe.
//
//   SY_LOG(INFO) << "host " << id << " joined";
//   SY_CHECK(ptr != nullptr) << "programmer error, never for bad input";
//
// SY_CHECK aborts the process: use it for broken invariants only; bad input
// gets an absl::Status instead.
#pragma once

#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sy::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

// Messages below `level` are dropped (default kInfo). Thread-safe.
void SetMinLevel(Level level);
Level MinLevel();
bool IsEnabled(Level level);

// "debug", "info", "warning"/"warn", "error" (case-insensitive).
absl::StatusOr<Level> ParseLevel(absl::string_view text);
absl::string_view LevelName(Level level);

// Where finished lines go; the default writes to stderr (fd 2). Tests may
// capture lines; pass nullptr to restore stderr. Thread-safe.
using Sink = void (*)(const std::string& line);
void SetSinkForTesting(Sink sink);

// One message under construction; emits its line when destroyed.
class LogMessage {
 public:
  LogMessage(Level level, const char* file, int line);
  ~LogMessage();  // emits; aborts after emitting when level is kFatal
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  Level level_;
  std::ostringstream stream_;
};

// Turns `stream << ...` into void so it can sit in a ternary.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace sy::log

#define SY_LOG_LEVEL_DEBUG ::sy::log::Level::kDebug
#define SY_LOG_LEVEL_INFO ::sy::log::Level::kInfo
#define SY_LOG_LEVEL_WARNING ::sy::log::Level::kWarning
#define SY_LOG_LEVEL_ERROR ::sy::log::Level::kError
#define SY_LOG_LEVEL_FATAL ::sy::log::Level::kFatal

// SY_LOG(DEBUG|INFO|WARNING|ERROR|FATAL) << ...; arguments are not evaluated
// when the level is disabled.
#define SY_LOG(severity)                             \
  !::sy::log::IsEnabled(SY_LOG_LEVEL_##severity)     \
      ? (void)0                                      \
      : ::sy::log::Voidify() &                       \
            ::sy::log::LogMessage(SY_LOG_LEVEL_##severity, __FILE__, __LINE__).stream()

// Aborts with the condition text and the streamed message when `cond` is false.
#define SY_CHECK(cond)                                                                     \
  (cond) ? (void)0                                                                        \
         : ::sy::log::Voidify() &                                                         \
               ::sy::log::LogMessage(::sy::log::Level::kFatal, __FILE__, __LINE__).stream() \
                   << "Check failed: " #cond " "
