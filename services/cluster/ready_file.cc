// Atomic ready files (see ready_file.h).
#include "services/cluster/ready_file.h"

#include "services/cluster/atomic_file.h"

namespace sy::cluster {

absl::Status WriteReadyFile(const std::string& path, const std::string& endpoint) {
  return WriteFileAtomically(path, endpoint + "\n");
}

}  // namespace sy::cluster
