// Reads argv into the registered absl flags without exiting (see flags.h): each flag is
// found with absl::FindCommandLineFlag and set with CommandLineFlag::ParseFrom.
#include "common/flags/flags.h"

#include <cstdint>
#include <optional>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sy::flags {
namespace {

// What a value of `flag`'s type looks like, for the error message.
std::string ExpectedValue(const absl::CommandLineFlag& flag, const std::string& absl_error) {
  if (flag.IsOfType<bool>()) return "true or false";
  if (flag.IsOfType<int32_t>()) return "a 32-bit integer";
  if (flag.IsOfType<int64_t>()) return "a 64-bit integer";
  if (flag.IsOfType<uint64_t>()) return "a non-negative integer";
  if (flag.IsOfType<double>()) return "a number";
  return absl_error;
}

// The flag an argument named `name` sets, and whether it is the "--noswitch" form.
struct Target {
  absl::CommandLineFlag* flag = nullptr;
  bool negated = false;
};

Target FindTarget(absl::string_view name, bool has_value) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag != nullptr && !flag->IsRetired()) return {flag, false};
  if (has_value || !absl::StartsWith(name, "no")) return {};
  flag = absl::FindCommandLineFlag(name.substr(2));
  if (flag == nullptr || flag->IsRetired() || !flag->IsOfType<bool>()) return {};
  return {flag, true};
}

// Every registered flag back to its default value, so that a command line is parsed over the defaults only.
void ResetToDefaults() {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    std::string error;
    if (!flag->IsRetired()) flag->ParseFrom(flag->DefaultValue(), &error);  // a default always parses
  }
}

}  // namespace

absl::string_view FlagName(absl::string_view arg) {
  if (!absl::StartsWith(arg, "--") || arg.size() == 2) return "";
  arg.remove_prefix(2);
  return arg.substr(0, arg.find('='));
}

absl::StatusOr<std::vector<std::string>> ParseArgs(const std::vector<std::string>& args, Spelling spelling) {
  ResetToDefaults();
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    const absl::string_view name = FlagName(arg);
    if (name.empty()) {
      positional.push_back(arg);
      continue;
    }
    if (name == "help" || name == "helpfull") continue;  // HelpRequested's
    const size_t eq = arg.find('=');
    std::optional<std::string> value;
    if (eq != std::string::npos) value = arg.substr(eq + 1);
    const Target target = FindTarget(name, value.has_value());
    if (target.flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    const bool is_switch = target.flag->IsOfType<bool>();
    if (is_switch && value && spelling == Spelling::kStrict) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
    }
    if (target.negated) {
      value = "false";
    } else if (!value && is_switch) {
      value = "true";
    } else if (!value) {
      if (spelling == Spelling::kStrict || i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value (--", name, "=VALUE)"));
      }
      value = args[++i];
    }
    std::string error;
    if (!target.flag->ParseFrom(*value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", target.flag->Name(), "=", *value, ": expected ", ExpectedValue(*target.flag, error)));
    }
  }
  return positional;
}

absl::Status ParseFlagArgs(const std::vector<std::string>& args) {
  absl::StatusOr<std::vector<std::string>> positional = ParseArgs(args);
  if (!positional.ok()) return positional.status();
  if (positional->empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unexpected argument '", positional->front(), "' (flags are written --name=value)"));
}

}  // namespace sy::flags
