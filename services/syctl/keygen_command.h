// `syctl keygen`: one fresh key pair printed, or a cluster key directory written
// (--cluster=DIR --hosts=N --trainers=M --operators=K) or grown by one node
// (--cluster=DIR --add ROLE NAME). The directory's layout: services/cluster/cluster_keys.h.
// Thread-compatible.
#pragma once

#include <ostream>

#include "services/syctl/syctl.h"

namespace sy::syctl {

// Carries out a keygen invocation; returns the exit code.
int Keygen(const Invocation& inv, std::ostream& out, std::ostream& err);

}  // namespace sy::syctl
