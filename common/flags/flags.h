// Command-line parsing for every Switchyard binary, on top of absl flags:
// sets the usage message, parses, and turns flag mistakes into a clear message
// on stderr and exit code 2 (the conventional "usage error"). Range checks are
// plain functions returning absl::Status so they can be tested and combined.
//
//   sy::flags::ParseCommandLine(argc, argv, "sy-trainer --data=FILE --steps=N");
//   sy::flags::ExitIfInvalid({sy::flags::RequirePositive("steps", absl::GetFlag(FLAGS_steps))});
//
// Not thread-safe: call from main() before starting threads.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sy::flags {

inline constexpr int kUsageErrorExitCode = 2;

// Sets the usage message and parses the flags. Positional arguments are an
// error: prints it and exits with code 2. (Unknown or malformed flags are
// reported by absl itself, which exits with code 1.) Call at most once.
void ParseCommandLine(int argc, char** argv, absl::string_view usage);

// Same, but positional arguments are allowed and returned (argv[0] excluded),
// for binaries with subcommands such as syctl.
std::vector<std::string> ParseCommandLineWithArgs(int argc, char** argv, absl::string_view usage);

// OK when `positional` (arguments left after parsing, argv[0] excluded) is empty;
// InvalidArgument naming them otherwise.
absl::Status RequireNoPositionalArgs(const std::vector<std::string>& positional);

// Range checks: OK or InvalidArgument "--name=value: must be ...".
absl::Status RequirePositive(absl::string_view name, int64_t value);
absl::Status RequirePositive(absl::string_view name, double value);
absl::Status RequireNonNegative(absl::string_view name, int64_t value);
absl::Status RequireNonNegative(absl::string_view name, double value);
absl::Status RequireInRange(absl::string_view name, int64_t value, int64_t min, int64_t max);
absl::Status RequireInRange(absl::string_view name, double value, double min, double max);
absl::Status RequireNonEmpty(absl::string_view name, absl::string_view value);

// Prints every failed check to stderr and exits with code 2 if any failed.
void ExitIfInvalid(std::initializer_list<absl::Status> checks);

}  // namespace sy::flags
