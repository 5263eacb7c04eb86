// Small files that must survive a crash whole or not at all (markers kept next to a
// database): written to a temporary name, synced, renamed over the old one, and the
// directory synced. Thread-safe: pure functions over the file system.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sy::storage {

// Replaces `path` with `contents` atomically and durably. Unavailable (naming the
// path and the system error) when any step fails; the old file then stays as it was.
absl::Status WriteFileDurably(const std::string& path, absl::string_view contents);

// The whole of `path`: NotFound when it does not exist, Unavailable when it cannot be read.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path);

}  // namespace sy::storage
