// Whole-file replacement that a reader (or a crash) never sees half done: the bytes go
// to PATH.tmp, are flushed to disk, and the temp file is renamed over PATH. Used for
// ready files and a run's saved model. Pure apart from the file system.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sy::cluster {

// FailedPrecondition naming the path when the temp file cannot be written or renamed
// (PATH is then unchanged).
absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes);

}  // namespace sy::cluster
