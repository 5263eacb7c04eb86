// syctl's command line: its flags (ABSL_FLAG, library sy_syctl_cli, linked by syctl and
// its tests only) and RunSyctl, which reads them into an Invocation and runs it.
//
//   syctl --coordinator=ADDR [--admin_key_file=FILE] [--json] [--timeout_ms=N] <command> [args]
//
// Flags may appear before or after the command; values follow '=' and switches are bare
// (the word after a flag is never its value). Not thread-safe (flags are process-global).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace sy::syctl {

// `args` excludes argv[0]. Results go to `out`, errors and help for bad usage to `err`;
// returns the exit code (syctl.h). The flags are parsed over their defaults (flags::ParseArgs).
int RunSyctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace sy::syctl
