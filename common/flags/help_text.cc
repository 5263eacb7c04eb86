// --help and --helpfull (see flags.h): the usage message, then each registered flag
// with its meaning and default, grouped by the file that defines it.
#include "common/flags/flags.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace sy::flags {
namespace {

// "cluster/model_flags.cc" of a full path: the defining file and its folder.
std::string ShortFileName(absl::string_view path) {
  const std::vector<absl::string_view> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  if (parts.size() < 2) return std::string(path);
  return absl::StrCat(parts[parts.size() - 2], "/", parts.back());
}

bool IsAbseilFlag(absl::string_view path) {
  return absl::StartsWith(path, "absl/") || absl::StrContains(path, "/absl/");
}

}  // namespace

Help HelpRequested(const std::vector<std::string>& args) {
  Help help = Help::kNone;
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (arg == "--helpfull") return Help::kFull;
    if (arg == "--help") help = Help::kOwn;
  }
  return help;
}

std::string HelpText(absl::string_view usage, Help which) {
  std::map<std::string, std::vector<const absl::CommandLineFlag*>> by_file;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->IsRetired()) continue;
    const std::string path = flag->Filename();
    if (which != Help::kFull && IsAbseilFlag(path)) continue;
    by_file[ShortFileName(path)].push_back(flag);
  }
  std::string text(usage);
  if (!text.empty() && text.back() != '\n') text += "\n";
  for (auto& [file, file_flags] : by_file) {
    std::sort(file_flags.begin(), file_flags.end(),
              [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) { return a->Name() < b->Name(); });
    absl::StrAppend(&text, "\nflags from ", file, ":\n");
    for (const absl::CommandLineFlag* flag : file_flags) {
      const std::string default_value = flag->DefaultValue();
      absl::StrAppendFormat(&text, "  --%-22s %s (default: %s)\n", flag->Name(), flag->Help(),
                            default_value.empty() ? "\"\"" : default_value);
    }
  }
  absl::StrAppend(&text, "\n--help lists these flags; --helpfull adds the flags of the libraries (Abseil), if any.\n");
  return text;
}

void ExitWithHelpIfRequested(const std::vector<std::string>& args, absl::string_view usage) {
  const Help help = HelpRequested(args);
  if (help == Help::kNone) return;
  std::cout << HelpText(usage, help) << std::flush;
  std::exit(0);
}

}  // namespace sy::flags
