// Raising the open-file limit (see fd_limit.h).
#include "common/transport/fd_limit.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace sy::transport {

absl::StatusOr<uint64_t> RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(absl::StrCat("getrlimit(RLIMIT_NOFILE): ", std::strerror(errno)));
  }
  if (limit.rlim_cur != limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      return absl::InternalError(absl::StrCat("setrlimit(RLIMIT_NOFILE, ", limit.rlim_max, "): ", std::strerror(errno)));
    }
    limit = raised;
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

void RaiseOpenFileLimitOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    absl::StatusOr<uint64_t> limit = RaiseOpenFileLimit();
    if (limit.ok()) {
      SY_LOG(DEBUG) << "open-file limit: " << *limit;
    } else {
      SY_LOG(WARNING) << "could not raise the open-file limit (" << limit.status()
                      << "): new peers may be refused after about a thousand connections";
    }
  });
}

size_t ConnectionsWithinOpenFileLimit(size_t wanted) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return wanted;
  return std::min<size_t>(wanted, static_cast<size_t>(limit.rlim_cur / 4 * 3));
}

}  // namespace sy::transport
