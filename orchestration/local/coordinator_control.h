// What sy-local asks of its coordinator besides starting it: seeding its database
// from an earlier run (--restore_from) and restoring a checkpoint into the fresh
// hosts before the trainers start (--restore_checkpoint), through the admin API
// (the same calls as `syctl checkpoint list|restore`). Thread-compatible: one
// caller at a time.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sy::local {

// The RocksDB directory `path` names: PATH/coordinator.db when PATH is an earlier
// run's workdir, else PATH itself. NotFound when neither holds a database.
absl::StatusOr<std::string> CheckpointDatabaseOf(const std::string& path);

// Copies the database directory `from` to `to` (replacing `to`).
absl::Status CopyDatabase(const std::string& from, const std::string& to);

struct RestoredCheckpoint {
  uint64_t id = 0;
  uint64_t step = 0;  // the hosts now hold the state after this step
};

// Restores checkpoint `id` (0: the newest committed one) through the coordinator
// at `endpoint` onto its current hosts and returns its step. NotFound when there
// is no such checkpoint; the coordinator's error otherwise.
absl::StatusOr<RestoredCheckpoint> RestoreCheckpoint(const std::string& endpoint, uint64_t id,
                                                     absl::Duration timeout);

}  // namespace sy::local
