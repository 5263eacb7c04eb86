// RocksDB glue: rocksdb::Status -> absl::Status with codes chosen by what the caller
// should do, and opening a database with a clear error instead of a crash when the
// directory is corrupt, locked or unreadable. Thread-safe: pure functions.
#pragma once

#include <memory>
#include <string>

#include <rocksdb/db.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sy::storage {

// Corruption -> DataLoss; IOError, Busy, TimedOut, TryAgain -> Unavailable;
// NotFound -> NotFound; InvalidArgument/NotSupported -> FailedPrecondition;
// anything else -> Internal. `context` prefixes the message.
absl::Status FromRocksDb(const rocksdb::Status& status, absl::string_view context);

struct OpenOptions {
  bool create_if_missing = true;
  rocksdb::Env* env = nullptr;  // null: the default environment (tests inject faults here)
  // Reads only, without taking the database's lock (a live coordinator may hold it);
  // create_if_missing is then ignored.
  bool read_only = false;
};

// Opens (or creates) the database at `path` with paranoid checks on, refusing any
// damage to its write-ahead log (absolute consistency) and verifying every table
// file's checksums: DataLoss naming `path` when something is damaged.
// read_only: NotFound when `path` holds no database.
absl::StatusOr<std::unique_ptr<rocksdb::DB>> OpenDb(const std::string& path, const OpenOptions& options);

}  // namespace sy::storage
