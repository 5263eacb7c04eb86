// Implementation of the stderr logger: formats a line, then writes it with one
// write() call under a mutex so concurrent lines stay whole.
#include "common/log/log.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace sy::log {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};
std::atomic<Sink> g_sink{nullptr};
std::mutex g_write_mu;

const char* Basename(const char* path) {
  const char* base = path;
  for (const char* p = path; *p != '\0'; ++p) {
    if (*p == '/') base = p + 1;
  }
  return base;
}

std::string TimestampUtc() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1000000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long>(micros));
  return buf;
}

void WriteLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_write_mu);
  if (Sink sink = g_sink.load()) {
    sink(line);
    return;
  }
  const char* data = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(2, data, left);
    if (n <= 0) return;  // stderr is gone: nothing sensible to do
    data += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

void SetMinLevel(Level level) { g_min_level.store(static_cast<int>(level)); }
Level MinLevel() { return static_cast<Level>(g_min_level.load()); }
bool IsEnabled(Level level) {
  return level == Level::kFatal || static_cast<int>(level) >= g_min_level.load();
}

absl::StatusOr<Level> ParseLevel(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "debug") return Level::kDebug;
  if (lower == "info") return Level::kInfo;
  if (lower == "warning" || lower == "warn") return Level::kWarning;
  if (lower == "error") return Level::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level '", text, "' (expected debug, info, warning or error)"));
}

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "DEBUG";
    case Level::kInfo: return "INFO";
    case Level::kWarning: return "WARNING";
    case Level::kError: return "ERROR";
    case Level::kFatal: return "FATAL";
  }
  return "UNKNOWN";
}

void SetSinkForTesting(Sink sink) { g_sink.store(sink); }

LogMessage::LogMessage(Level level, const char* file, int line) : level_(level) {
  stream_ << TimestampUtc() << ' ' << LevelName(level) << ' ' << Basename(file) << ':' << line
          << " [" << static_cast<long>(::syscall(SYS_gettid)) << "] ";
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  WriteLine(stream_.str());
  if (level_ == Level::kFatal) std::abort();
}

}  // namespace sy::log
