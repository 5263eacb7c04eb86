// Storage faults for the coordinator's tests (see storage_faults.h).
#include "tests/unit/coordinator/storage_faults.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include <rocksdb/utilities/stackable_db.h>

namespace sy::coordinator::testing {
namespace {

namespace fs = std::filesystem;

class FailingFile : public rocksdb::WritableFileWrapper {
 public:
  FailingFile(std::unique_ptr<rocksdb::WritableFile> inner, const FailingWritesEnv* env)
      : rocksdb::WritableFileWrapper(inner.get()), inner_(std::move(inner)), env_(env) {}
  rocksdb::Status Append(const rocksdb::Slice& data) override {
    if (env_->fail) return env_->Failure();
    return rocksdb::WritableFileWrapper::Append(data);
  }
  rocksdb::Status Sync() override {
    if (env_->fail) return env_->Failure();
    return rocksdb::WritableFileWrapper::Sync();
  }
  rocksdb::Status Fsync() override {
    if (env_->fail) return env_->Failure();
    return rocksdb::WritableFileWrapper::Fsync();
  }

 private:
  std::unique_ptr<rocksdb::WritableFile> inner_;
  const FailingWritesEnv* env_;
};

class ManifestReadsFail : public rocksdb::StackableDB {
 public:
  explicit ManifestReadsFail(rocksdb::DB* db) : rocksdb::StackableDB(db) {}
  using rocksdb::StackableDB::Get;
  rocksdb::Status Get(const rocksdb::ReadOptions& options, rocksdb::ColumnFamilyHandle* family,
                      const rocksdb::Slice& key, rocksdb::PinnableSlice* value) override {
    if (!key.empty() && key[0] == 'm') return rocksdb::Status::IOError("injected read failure");
    return rocksdb::StackableDB::Get(options, family, key, value);
  }
};

int temp_dirs = 0;

}  // namespace

TempDir::TempDir() {
  path_ = (fs::temp_directory_path() /
           ("sy_store_test_" + std::to_string(::getpid()) + "_" + std::to_string(temp_dirs++)))
              .string();
  fs::remove_all(path_);
}

TempDir::~TempDir() { fs::remove_all(path_); }

rocksdb::Status FailingWritesEnv::NewWritableFile(const std::string& f, std::unique_ptr<rocksdb::WritableFile>* r,
                                                  const rocksdb::EnvOptions& options) {
  std::unique_ptr<rocksdb::WritableFile> inner;
  rocksdb::Status s = target()->NewWritableFile(f, &inner, options);
  if (s.ok()) *r = std::make_unique<FailingFile>(std::move(inner), this);
  return s;
}

rocksdb::Status FailingWritesEnv::Failure() const {
  return disk_full ? rocksdb::Status::NoSpace("injected: the disk is full")
                   : rocksdb::Status::IOError("injected write failure");
}

std::unique_ptr<rocksdb::DB> FailManifestReads(std::unique_ptr<rocksdb::DB> db) {
  return std::make_unique<ManifestReadsFail>(db.release());
}

std::vector<std::string> DbFiles(const std::string& dir, const std::string& part) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().find(part) != std::string::npos) files.push_back(entry.path().string());
  }
  return files;
}

void FlipMiddleByte(const std::string& file) {
  const auto middle = static_cast<std::streamoff>(fs::file_size(file) / 2);
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  char c = 0;
  f.seekg(middle);
  f.read(&c, 1);
  c = static_cast<char>(~c);
  f.seekp(middle);
  f.write(&c, 1);
}

void Truncate(const std::string& file, size_t bytes) { fs::resize_file(file, fs::file_size(file) - bytes); }

}  // namespace sy::coordinator::testing
