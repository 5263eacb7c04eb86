// The coordinator's admin key file (--admin_keys), for the CURVE admin endpoint: the
// server's key pair and the public keys of the authorised admins.
// Thread-safe: pure functions (LoadAdminKeys reads the file).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sy::coordinator {

// The file: one entry per line, a label then 40-character Z85 keys (zmq_curve_keypair;
// `syctl keygen` makes them), separated by spaces; blank lines and lines starting with
// '#' are ignored:
//
//   server_secret <Z85 secret key of the coordinator's admin endpoint>
//   server_public <Z85 public key matching server_secret>
//   admin <name> <Z85 public key of an authorised admin>   (one or more lines)
struct AdminKeys {
  std::string server_secret;
  std::string server_public;
  std::vector<std::string> admin_names;  // parallel to admin_publics
  std::vector<std::string> admin_publics;
};

// Parses the admin key file's text; InvalidArgument naming the line for anything
// malformed (unknown label, bad key, duplicate, missing entry, mismatched key pair).
absl::StatusOr<AdminKeys> ParseAdminKeys(const std::string& text);
// Reads and parses `path`; InvalidArgument when it cannot be read.
absl::StatusOr<AdminKeys> LoadAdminKeys(const std::string& path);

}  // namespace sy::coordinator
