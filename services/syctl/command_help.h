// syctl's commands and their help: the usage of each, `syctl help`, `syctl help CMD`.
// Thread-safe (constant data); printing is the caller's stream's.
#pragma once

#include <ostream>
#include <string>

namespace sy::syctl {

// Whether `name` is a syctl command (status, hosts, ..., keygen, help).
bool IsCommand(const std::string& name);

// The whole help: usage, global flags, every command, admin key files, exit codes.
void PrintHelp(std::ostream& out);

// One command's usage and summary; `name` must be a command.
void PrintCommandHelp(const std::string& name, std::ostream& out);

}  // namespace sy::syctl
