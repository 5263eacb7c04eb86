// syctl: the admin CLI of a Switchyard cluster, as a function the tests can call.
//
//   syctl --coordinator=ADDR [--admin_key_file=FILE] [--json] [--timeout_ms=N] <command> [args]
//   commands: status | hosts | experts | checkpoint now|list|restore K |
//             rebalance [--dry_run] [--threshold=X] | drain HOST | remove HOST |
//             faults SPEC|clear [--node=ID] | keygen | help [command]
//
// --admin_key_file connects over CurveZMQ (key file format: admin_client.h), for a
// coordinator's --admin_listen endpoint; `keygen` prints a fresh key pair.
//
// Global options may appear before or after the command. Output: aligned tables by
// default, one JSON document with --json. Exit codes: 0 success, 1 the coordinator
// refused or failed the command, 2 bad usage, 3 the coordinator did not answer
// within the timeout (unreachable).
// Thread-compatible: one call at a time per output stream.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace sy::syctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

// `args` excludes argv[0]. Results go to `out`, errors and help for bad usage to `err`.
int RunSyctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace sy::syctl
