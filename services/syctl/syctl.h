// syctl: the admin CLI of a Switchyard cluster, as functions the tests can call.
//
//   syctl --coordinator=ADDR [--keys=DIR [--as=NAME] | --admin_key_file=FILE] [--json] [--timeout_ms=N]
//         <command> [args]
//   commands: status | hosts | experts | checkpoint now|list|restore K |
//             rebalance [--dry_run] [--threshold=X] | drain HOST | remove HOST |
//             faults SPEC|clear [--node=ID] | keygen | help [command]
//
// --keys connects over CurveZMQ as operator --as of a cluster key directory (the
// coordinator's main endpoint); --admin_key_file (key file format: admin_client.h), to a
// coordinator's --admin_listen endpoint; `keygen` prints a fresh key pair or writes a
// cluster key directory (keygen_command.h).
//
// The command line becomes an Invocation in command_line.h (RunSyctl); RunCommand
// carries it out. Output: aligned tables by default, one JSON document with --json.
// Exit codes: 0 success, 1 the coordinator refused or failed the command, 2 bad
// usage, 3 the coordinator did not answer within the timeout (unreachable).
// Thread-compatible: one call at a time per output stream.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace sy::syctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

// What a syctl command line asks for.
struct Invocation {
  std::string coordinator;
  std::string admin_key_file;
  std::string keys_dir;                        // --keys: a cluster key directory to connect with
  std::string as = "operator-0";               // --as: our operator name in it
  bool json = false;
  int64_t timeout_ms = 5000;
  bool help = false;                           // --help: the command's help (or all of it without one)
  std::vector<std::string> words;              // command and its positional arguments
  std::map<std::string, std::string> options;  // command options given (--dry_run, --threshold, --node)
};

// OK when the command (inv.words[0]) has `positional` arguments and only options in
// `allowed`; InvalidArgument saying which is wrong otherwise.
absl::Status ExpectArguments(const Invocation& inv, size_t positional, const std::vector<std::string>& allowed);

// Prints bad usage to `err` with a pointer to `syctl help`; returns kExitUsage.
int Usage(const std::string& message, std::ostream& err);

// Carries out `inv`: help, keygen, or one admin call. Results go to `out`, errors and
// help for bad usage to `err`; returns the exit code.
int RunCommand(const Invocation& inv, std::ostream& out, std::ostream& err);

}  // namespace sy::syctl
