// tmp + fsync + rename (see atomic_file.h).
#include "services/cluster/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sy::cluster {
namespace {

absl::Status WriteAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::FailedPreconditionError(std::strerror(errno));
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  if (::fsync(fd) != 0) return absl::FailedPreconditionError(std::strerror(errno));
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::FailedPreconditionError(absl::StrCat("cannot write '", tmp, "': ", std::strerror(errno)));
  absl::Status written = WriteAll(fd, bytes);
  if (::close(fd) != 0 && written.ok()) written = absl::FailedPreconditionError(std::strerror(errno));
  if (!written.ok()) {
    std::remove(tmp.c_str());
    return absl::FailedPreconditionError(absl::StrCat("cannot write '", tmp, "': ", written.message()));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    return absl::FailedPreconditionError(absl::StrCat("cannot rename '", tmp, "' to '", path, "': ", why));
  }
  return absl::OkStatus();
}

}  // namespace sy::cluster
