// The flags that say how a networked node authenticates, shared by sy-coordinator,
// sy-expert-host and sy-trainer (library sy_security_flags): --keys=DIR, a cluster key
// directory (cluster_keys.h), or --insecure for plain TCP; and --max_connections, the
// cap on the connections a node's listening socket holds, keys or not. Process-global: not
// thread-safe; call from main() or a test.
#pragma once

#include "services/cluster/cluster_keys.h"

namespace sy::cluster {

// --keys and --insecure as NodeSecurity (checked by CheckNodeSecurity, the caller's).
NodeSecurity ReadSecurityFlags();

}  // namespace sy::cluster
