// States expected from live moves, checked chunk by chunk (see live_arrivals.h).
#include "services/expert_host/live_arrivals.h"

#include "absl/strings/str_cat.h"

namespace sy::expert_host {

LiveArrivals::LiveArrivals(size_t max_concurrent, absl::Duration idle) : chunks_(max_concurrent, idle) {}

void LiveArrivals::Expect(const cluster::ActorKey& key, const std::string& from, uint64_t version) {
  absl::MutexLock lock(&mu_);
  expected_[key] = {from, version};
}

void LiveArrivals::Forget(const cluster::ActorKey& key) {
  absl::MutexLock lock(&mu_);
  expected_.erase(key);
}

void LiveArrivals::ForgetAll() {
  absl::MutexLock lock(&mu_);
  expected_.clear();
}

absl::StatusOr<std::optional<std::string>> LiveArrivals::Add(const cluster::ActorKey& key, const std::string& sender,
                                                             proto::expert::ChunkIn::Reader chunk,
                                                             const transport::Frame& frame, uint64_t state_bytes) {
  {
    absl::MutexLock lock(&mu_);
    auto it = expected_.find(key);
    if (it == expected_.end()) {
      return absl::NotFoundError(absl::StrCat("live state of ", key.ToString(), " from ", sender,
                                              ": no live move brings it here"));
    }
    if (it->second.from != sender) {
      return absl::PermissionDeniedError(absl::StrCat("live state of ", key.ToString(), " from ", sender,
                                                      ": it comes from ", it->second.from));
    }
    if (it->second.version != chunk.getVersion()) {
      return absl::InvalidArgumentError(absl::StrCat("live state of ", key.ToString(), " at version ",
                                                     chunk.getVersion(), ": the move brings version ",
                                                     it->second.version));
    }
  }
  return chunks_.Add(key, chunk, frame, chunk.getVersion(), state_bytes);
}

}  // namespace sy::expert_host
