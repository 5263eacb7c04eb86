// Database seeding and checkpoint restore for sy-local (see coordinator_control.h).
#include "orchestration/local/coordinator_control.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/admin.capnp.h"
#include "proto/checkpoint.capnp.h"
#include "services/syctl/admin_client.h"

namespace sy::local {

absl::StatusOr<std::string> CheckpointDatabaseOf(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path in_workdir = std::filesystem::path(path) / "coordinator.db";
  for (const std::filesystem::path& candidate : {in_workdir, std::filesystem::path(path)}) {
    if (std::filesystem::exists(candidate / "CURRENT", ec)) return candidate.string();
  }
  return absl::NotFoundError(absl::StrCat("--restore_from=", path, ": neither it nor ", in_workdir.string(),
                                          " is a checkpoint database"));
}

absl::Status CopyDatabase(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::remove_all(to, ec);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("copying ", from, " to ", to, ": ", ec.message()));
  // A LOCK file copied along is only a marker: RocksDB takes the lock with fcntl.
  return absl::OkStatus();
}

absl::StatusOr<RestoredCheckpoint> RestoreCheckpoint(const std::string& endpoint, uint64_t id,
                                                     absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<syctl::AdminClient>> client = syctl::AdminClient::Connect(endpoint);
  if (!client.ok()) return client.status();
  absl::StatusOr<transport::DecodedMessage> listed =
      (*client)->Call([](proto::admin::AdminRequest::Builder r) { r.setCheckpointList(); }, timeout);
  if (!listed.ok()) return listed.status();
  auto list = listed->Body<proto::admin::AdminReply>();
  if (!list.ok()) return list.status();
  if (list->which() != proto::admin::AdminReply::CHECKPOINTS) {
    return absl::InternalError("the coordinator answered a checkpoint list with something else");
  }
  RestoredCheckpoint chosen;
  for (auto manifest : list->getCheckpoints()) {
    const bool wanted = id == 0 ? manifest.getCheckpointId() > chosen.id : manifest.getCheckpointId() == id;
    if (wanted) chosen = {manifest.getCheckpointId(), manifest.getStep()};
  }
  if (chosen.id == 0) {
    return absl::NotFoundError(id == 0 ? std::string("the database holds no committed checkpoint")
                                       : absl::StrCat("no committed checkpoint ", id, " in the database"));
  }
  // Hosts registering on a seeded database may start the coordinator's own recovery
  // (Unavailable while it runs): ask again until it is done.
  const absl::Time give_up = absl::Now() + timeout;
  absl::StatusOr<transport::DecodedMessage> restored;
  do {
    restored = (*client)->Call([&](proto::admin::AdminRequest::Builder r) { r.setCheckpointRestore(chosen.id); },
                               timeout);
    if (restored.status().code() != absl::StatusCode::kUnavailable) break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < give_up);
  if (!restored.ok()) {
    return absl::Status(restored.status().code(),
                        absl::StrCat("restoring checkpoint ", chosen.id, ": ", restored.status().message()));
  }
  return chosen;
}

}  // namespace sy::local
