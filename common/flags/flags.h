// Command lines of every Switchyard binary, on top of absl flags: absl defines and
// parses each flag's value; this library reads argv into the registered flags without
// exiting (so parsing is testable), prints --help / --helpfull, and turns every flag
// mistake (unknown flag, bad value, failed range check) into a message naming the flag
// and exit code 2, the conventional "usage error". Range checks are plain functions
// returning absl::Status so they can be tested and combined.
//
//   sy::flags::ParseCommandLine(argc, argv, "sy-coordinator --db=PATH [flags]");
//   sy::flags::ExitIfInvalid({sy::flags::RequirePositive("steps", absl::GetFlag(FLAGS_steps))});
//
// Flags are process-global: nothing here is thread-safe; call from main() (or a test)
// before starting threads.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sy::flags {

inline constexpr int kUsageErrorExitCode = 2;

// ---- reading argv into the registered flags ----

// How a flag's value may be written.
enum class Spelling {
  // absl's: --name=value, --name value, bare --switch, --noswitch, --switch=false.
  kAbsl,
  // --name=value and bare --switch only: a word after a flag is never its value
  // (syctl, where that word is the command).
  kStrict,
};

// The flag name of a "--name" or "--name=value" argument; "" for anything else.
absl::string_view FlagName(absl::string_view arg);

// Sets every registered flag to its default, then to its value in `args` (argv without
// argv[0]), and returns the positional arguments; "--" ends the flags. So a command line
// parsed twice gives the same values. --help and --helpfull are skipped (see
// HelpRequested). InvalidArgument naming the flag for an unknown flag, a missing value
// or a value of the wrong type; flags parsed before the mistake keep their new values.
absl::StatusOr<std::vector<std::string>> ParseArgs(const std::vector<std::string>& args,
                                                   Spelling spelling = Spelling::kAbsl);

// ParseArgs for a command line of flags only: a positional argument is an error
// ("unexpected argument 'x'").
absl::Status ParseFlagArgs(const std::vector<std::string>& args);

// ---- help ----

enum class Help {
  kNone,
  kOwn,   // --help: the flags defined in Switchyard's sources
  kFull,  // --helpfull: every registered flag, Abseil's own included
};

// What `args` asks for: --helpfull wins over --help; none after a "--" counts.
Help HelpRequested(const std::vector<std::string>& args);

// `usage`, then every flag `which` covers with its meaning and default, grouped by
// the file that defines it.
std::string HelpText(absl::string_view usage, Help which);

// When `args` ask for help: prints HelpText to stdout and exits with code 0.
void ExitWithHelpIfRequested(const std::vector<std::string>& args, absl::string_view usage);

// ---- main() of a binary that reads its flags with absl::GetFlag ----

// Help (exit 0) when asked, else ParseArgs; a mistake is printed and exits with code 2.
// Returns the positional arguments (argv[0] excluded).
std::vector<std::string> ParseCommandLineWithArgs(int argc, char** argv, absl::string_view usage);

// Same, but positional arguments are a mistake too.
void ParseCommandLine(int argc, char** argv, absl::string_view usage);

// ---- checks ----

// OK when `positional` is empty; InvalidArgument naming them otherwise.
absl::Status RequireNoPositionalArgs(const std::vector<std::string>& positional);

// Range checks: OK or InvalidArgument "--name=value: must be ...".
absl::Status RequirePositive(absl::string_view name, int64_t value);
absl::Status RequirePositive(absl::string_view name, double value);
absl::Status RequireNonNegative(absl::string_view name, int64_t value);
absl::Status RequireNonNegative(absl::string_view name, double value);
absl::Status RequireInRange(absl::string_view name, int64_t value, int64_t min, int64_t max);
absl::Status RequireInRange(absl::string_view name, double value, double min, double max);
absl::Status RequireNonEmpty(absl::string_view name, absl::string_view value);
absl::Status RequireOneOf(absl::string_view name, absl::string_view value,
                          std::initializer_list<absl::string_view> allowed);

// The first failed check, or OK.
absl::Status FirstFailure(std::initializer_list<absl::Status> checks);

// OK when every check passed; else InvalidArgument with every failed check's message,
// in order, joined by "; ".
absl::Status EveryFailure(std::initializer_list<absl::Status> checks);

// Prints every failed check to stderr and exits with code 2 if any failed.
void ExitIfInvalid(std::initializer_list<absl::Status> checks);

}  // namespace sy::flags
