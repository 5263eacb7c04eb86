// Definitions of --keys and --insecure (see security_flags.h).
#include "services/cluster/security_flags.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, keys, "",
          "cluster key directory (`syctl keygen --cluster DIR ...`): this node's NAME.key and the allowlist; "
          "every socket is CurveZMQ, peers are admitted by the allowlist");
ABSL_FLAG(bool, insecure, false,
          "plain TCP without keys: no authentication, no encryption (logged; shown by `syctl status`)");

ABSL_FLAG(int64_t, max_connections, 2048,
          "connections the node's listening socket holds at most, whoever opens them (keys or not); more are shut "
          "down and counted in sy_refused_total{reason=\"connections\"} (at most 3/4 of the open-file limit)");

namespace sy::cluster {

NodeSecurity ReadSecurityFlags() {
  NodeSecurity security;
  security.keys_dir = absl::GetFlag(FLAGS_keys);
  security.insecure = absl::GetFlag(FLAGS_insecure);
  security.max_connections = static_cast<size_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_max_connections)));
  return security;
}

}  // namespace sy::cluster
