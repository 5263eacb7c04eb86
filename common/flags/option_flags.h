// Flags that each fill one field of an options struct, written once instead of three
// times (the ABSL_FLAG, its default, the copy into the struct):
//
//   namespace { struct LauncherFlagsName; }
//   constexpr auto LauncherFlags = &flags::OptionFlags<LauncherOptions, LauncherFlagsName>;
//   SY_OPTION_FLAG(LauncherFlags, int32_t, hosts, "expert hosts, at most 64");   // at global scope
//   ...
//   LauncherOptions o;
//   LauncherFlags().ReadInto(&o);   // o.hosts = --hosts, and so on for every flag of the group
//
// SY_OPTION_FLAG defines --hosts with ABSL_FLAG, its default the struct's own
// (LauncherOptions().hosts), and adds it to the group when the program starts; a
// group, its name declared in an anonymous namespace, lives in one file and so lists
// its flags in definition order (the order of static initialisation within a file). A flag that is not a plain copy into a
// field (a split list, a unit conversion) stays an ABSL_FLAG read by hand.
//
// Flags are process-global: not thread-safe; read groups from main() or a test.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"

namespace sy::flags {

template <class OptionsT>
class OptionFlagGroup {
 public:
  using Options = OptionsT;
  using Reader = void (*)(Options*);

  // Called by SY_OPTION_FLAG; returns true so that it can initialise a static.
  bool Add(const absl::CommandLineFlag& flag, Reader read) {
    members_.push_back({&flag, read});
    return true;
  }

  // Copies every flag of the group into its field of `options` (no checks).
  void ReadInto(Options* options) const {
    for (const Member& m : members_) m.read(options);
  }

  // "--name=value" for each flag of the group whose value is not its default, in
  // definition order.
  std::vector<std::string> ChangedFlags() const {
    std::vector<std::string> changed;
    for (const Member& m : members_) {
      const std::string value = m.flag->CurrentValue();
      if (value != m.flag->DefaultValue()) changed.push_back(absl::StrCat("--", m.flag->Name(), "=", value));
    }
    return changed;
  }

 private:
  struct Member {
    const absl::CommandLineFlag* flag;
    Reader read;
  };
  std::vector<Member> members_;
};

// The group of option flags called `Name` (a type used only as a name: one declared in
// an anonymous namespace keeps the group to its file).
template <class Options, class Name>
OptionFlagGroup<Options>& OptionFlags() {
  static auto* group = new OptionFlagGroup<Options>();
  return *group;
}

}  // namespace sy::flags

// Defines --field (ABSL_FLAG of `type`, default the group's Options().field) and adds it
// to `group`, a function returning the OptionFlagGroup; use at global scope.
#define SY_OPTION_FLAG(group, type, field, help)                                             \
  ABSL_FLAG(type, field, std::remove_reference_t<decltype(group())>::Options().field, help); \
  [[maybe_unused]] static const bool sy_option_flag_added_##field =                          \
      group().Add(absl::GetFlagReflectionHandle(FLAGS_##field),                              \
                  [](auto* options) { options->field = absl::GetFlag(FLAGS_##field); })
