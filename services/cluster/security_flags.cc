// Definitions of --keys and --insecure (see security_flags.h).
#include "services/cluster/security_flags.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, keys, "",
          "cluster key directory (`syctl keygen --cluster DIR ...`): this node's NAME.key and the allowlist; "
          "every socket is CurveZMQ, peers are admitted by the allowlist");
ABSL_FLAG(bool, insecure, false,
          "plain TCP without keys: no authentication, no encryption (logged; shown by `syctl status`)");

namespace sy::cluster {

NodeSecurity ReadSecurityFlags() {
  NodeSecurity security;
  security.keys_dir = absl::GetFlag(FLAGS_keys);
  security.insecure = absl::GetFlag(FLAGS_insecure);
  return security;
}

}  // namespace sy::cluster
