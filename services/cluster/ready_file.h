// A ready file: how a process that bound a port (port 0 picks a free one) tells the
// launcher or a test where it listens. The endpoint is written to PATH.tmp and renamed
// to PATH, so a reader never sees half a line. Pure apart from the file system.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace sy::cluster {

// Writes `endpoint` and a newline to `path` atomically (tmp + rename).
absl::Status WriteReadyFile(const std::string& path, const std::string& endpoint);

}  // namespace sy::cluster
