// Storage faults for the coordinator's tests: a temporary directory, a rocksdb::Env
// whose writes fail on demand (a failing or full disk), a database wrapper whose
// manifest reads fail, and byte-level damage to the files RocksDB keeps.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <rocksdb/db.h>
#include <rocksdb/env.h>

namespace sy::coordinator::testing {

// A fresh path under the system's temporary directory, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// An Env whose writable files fail every Append/Sync while `fail` is set: with an I/O
// error, or "No space left on device" when `disk_full` is set too.
class FailingWritesEnv : public rocksdb::EnvWrapper {
 public:
  FailingWritesEnv() : rocksdb::EnvWrapper(rocksdb::Env::Default()) {}
  const char* Name() const override { return "FailingWritesEnv"; }
  std::atomic<bool> fail{false};
  std::atomic<bool> disk_full{false};

  rocksdb::Status NewWritableFile(const std::string& f, std::unique_ptr<rocksdb::WritableFile>* r,
                                  const rocksdb::EnvOptions& options) override;
  rocksdb::Status Failure() const;
};

// Wraps `db` so that every read of a manifest key ('m' ...) fails with an I/O error
// (a disk that cannot read one block); everything else passes through.
std::unique_ptr<rocksdb::DB> FailManifestReads(std::unique_ptr<rocksdb::DB> db);

// The files of the database at `dir` whose names contain `part` (".log", ".sst", "MANIFEST-").
std::vector<std::string> DbFiles(const std::string& dir, const std::string& part);
// Flips every bit of the byte in the middle of `file`.
void FlipMiddleByte(const std::string& file);
// Cuts the last `bytes` bytes off `file`.
void Truncate(const std::string& file, size_t bytes);

}  // namespace sy::coordinator::testing
