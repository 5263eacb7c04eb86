// Range checks, their reporting, and the command-line entry points of main() (see flags.h).
#include "common/flags/flags.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sy::flags {
namespace {

template <class T>
absl::Status RangeError(absl::string_view name, T value, absl::string_view requirement) {
  return absl::InvalidArgumentError(absl::StrCat("--", name, "=", value, ": must be ", requirement));
}

}  // namespace

std::vector<std::string> ParseCommandLineWithArgs(int argc, char** argv, absl::string_view usage) {
  const std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  ExitWithHelpIfRequested(args, usage);
  absl::StatusOr<std::vector<std::string>> positional = ParseArgs(args);
  ExitIfInvalid({positional.status()});
  return *std::move(positional);
}

void ParseCommandLine(int argc, char** argv, absl::string_view usage) {
  ExitIfInvalid({RequireNoPositionalArgs(ParseCommandLineWithArgs(argc, argv, usage))});
}

absl::Status RequireNoPositionalArgs(const std::vector<std::string>& positional) {
  if (positional.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unexpected positional argument(s): '", absl::StrJoin(positional, "' '"),
                   "' (flags are written --name=value)"));
}

absl::Status RequirePositive(absl::string_view name, int64_t value) {
  return value > 0 ? absl::OkStatus() : RangeError(name, value, "> 0");
}
absl::Status RequirePositive(absl::string_view name, double value) {
  return value > 0 ? absl::OkStatus() : RangeError(name, value, "> 0");
}
absl::Status RequireNonNegative(absl::string_view name, int64_t value) {
  return value >= 0 ? absl::OkStatus() : RangeError(name, value, ">= 0");
}
absl::Status RequireNonNegative(absl::string_view name, double value) {
  return value >= 0 ? absl::OkStatus() : RangeError(name, value, ">= 0");
}
absl::Status RequireInRange(absl::string_view name, int64_t value, int64_t min, int64_t max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return RangeError(name, value, absl::StrCat("in [", min, ", ", max, "]"));
}
absl::Status RequireInRange(absl::string_view name, double value, double min, double max) {
  if (value >= min && value <= max) return absl::OkStatus();  // NaN fails both comparisons
  return RangeError(name, value, absl::StrCat("in [", min, ", ", max, "]"));
}
absl::Status RequireNonEmpty(absl::string_view name, absl::string_view value) {
  if (!value.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--", name, " must not be empty"));
}
absl::Status RequireOneOf(absl::string_view name, absl::string_view value,
                          std::initializer_list<absl::string_view> allowed) {
  for (absl::string_view a : allowed) {
    if (value == a) return absl::OkStatus();
  }
  return RangeError(name, value, absl::StrCat("one of ", absl::StrJoin(allowed, ", ")));
}

absl::Status FirstFailure(std::initializer_list<absl::Status> checks) {
  for (const absl::Status& check : checks) {
    if (!check.ok()) return check;
  }
  return absl::OkStatus();
}

absl::Status EveryFailure(std::initializer_list<absl::Status> checks) {
  std::vector<absl::string_view> failures;
  for (const absl::Status& check : checks) {
    if (!check.ok()) failures.push_back(check.message());
  }
  if (failures.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(failures, "; "));
}

void ExitIfInvalid(std::initializer_list<absl::Status> checks) {
  bool failed = false;
  for (const absl::Status& check : checks) {
    if (check.ok()) continue;
    std::fprintf(stderr, "error: %s\n", std::string(check.message()).c_str());
    failed = true;
  }
  if (failed) {
    std::fprintf(stderr, "Try --help for usage.\n");
    std::exit(kUsageErrorExitCode);
  }
}

}  // namespace sy::flags
