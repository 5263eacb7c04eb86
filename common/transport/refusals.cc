// Counted, rate-limited refusals (see refusals.h).
#include "common/transport/refusals.h"

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log/log.h"

namespace sy::transport {
namespace {

constexpr absl::Duration kLogEvery = absl::Seconds(1);

// Per reason: when it was last logged and how many refusals were not logged since.
class RefusalLog {
 public:
  // True when a line for `reason` is due now; *skipped: the refusals not logged since the last one.
  bool Due(absl::string_view reason, uint64_t* skipped) {
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    Entry& entry = entries_[reason];
    if (now - entry.last_logged < kLogEvery) {
      ++entry.skipped;
      return false;
    }
    entry.last_logged = now;
    *skipped = entry.skipped;
    entry.skipped = 0;
    return true;
  }

 private:
  struct Entry {
    absl::Time last_logged = absl::InfinitePast();
    uint64_t skipped = 0;
  };
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);  // one per reason (a fixed few)
};

RefusalLog& Log() {
  static RefusalLog* log = new RefusalLog();
  return *log;
}

}  // namespace

absl::Status Refuse(metrics::Registry* registry, absl::string_view reason, absl::Status refusal) {
  if (registry != nullptr) {
    registry
        ->GetCounter("sy_refused_total", "Requests refused at a service's door, by reason.",
                     {{"reason", std::string(reason)}})
        .Increment();
  }
  uint64_t skipped = 0;
  if (Log().Due(reason, &skipped)) {
    SY_LOG(WARNING) << "refused (" << reason << "): " << refusal.message()
                    << (skipped > 0 ? " (" + std::to_string(skipped) + " more refusals of this kind not logged)" : "");
  }
  return refusal;
}

}  // namespace sy::transport
