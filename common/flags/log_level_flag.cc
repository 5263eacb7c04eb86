// Definition of --log_level and its application (see log_level_flag.h).
#include "common/flags/log_level_flag.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"

ABSL_FLAG(std::string, log_level, "info", "Minimum log level: debug, info, warning or error.");

namespace sy::flags {

absl::Status ApplyLogLevelFlag() {
  const absl::StatusOr<log::Level> level = log::ParseLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--log_level: ", level.status().message()));
  }
  log::SetMinLevel(*level);
  return absl::OkStatus();
}

}  // namespace sy::flags
