// RocksDB status mapping and opening (see rocksdb_util.h).
#include "common/storage/rocksdb_util.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace sy::storage {

absl::Status FromRocksDb(const rocksdb::Status& status, absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(context, ": ", status.ToString());
  switch (status.code()) {
    case rocksdb::Status::kCorruption:
      return absl::DataLossError(message);
    case rocksdb::Status::kIOError:
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTimedOut:
    case rocksdb::Status::kTryAgain:
      return absl::UnavailableError(message);
    case rocksdb::Status::kNotFound:
      return absl::NotFoundError(message);
    case rocksdb::Status::kInvalidArgument:
    case rocksdb::Status::kNotSupported:
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<std::unique_ptr<rocksdb::DB>> OpenDb(const std::string& path, const OpenOptions& options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.paranoid_checks = true;
  // Any damage to the write-ahead log (a flipped byte, a truncated record) fails the
  // open: point-in-time recovery would stop replaying at the damage and silently drop
  // every later write, committed checkpoints included.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kAbsoluteConsistency;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.keep_log_file_num = 2;
  if (options.env != nullptr) db_options.env = options.env;
  rocksdb::DB* raw = nullptr;
  if (options.read_only) {
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::path(path) / "CURRENT", ec)) {
      return absl::NotFoundError(absl::StrCat("'", path, "' is not a database (no CURRENT file)"));
    }
  }
  rocksdb::Status status = options.read_only ? rocksdb::DB::OpenForReadOnly(db_options, path, &raw)
                                             : rocksdb::DB::Open(db_options, path, &raw);
  if (!status.ok()) {
    return FromRocksDb(status, absl::StrCat("cannot open database '", path, "'"));
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  // Every table file's blocks against their checksums: a damaged file refuses the start
  // here, not at the first read of a checkpoint it holds.
  if (rocksdb::Status verified = db->VerifyChecksum(); !verified.ok()) {
    return FromRocksDb(verified, absl::StrCat("database '", path, "' is damaged"));
  }
  return db;
}

}  // namespace sy::storage
