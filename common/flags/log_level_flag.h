// --log_level, the flag every Switchyard binary has, defined once (library
// sy_log_level_flag) so that a binary linking several flag libraries never defines
// it twice:
//   --log_level  debug | info | warning | error (default info)
//
// Not thread-safe: call from main() before starting threads.
#pragma once

#include <string>

#include "absl/flags/declare.h"
#include "absl/status/status.h"

ABSL_DECLARE_FLAG(std::string, log_level);

namespace sy::flags {

// Parses --log_level and applies it (sy::log::SetMinLevel). InvalidArgument on a bad level.
absl::Status ApplyLogLevelFlag();

}  // namespace sy::flags
