// The cluster key directory: every node's own CurveZMQ key pair and the allowlist
// naming each public key's role and node name (common/transport/peer_allowlist.h).
// `syctl keygen --cluster DIR` writes one, the nodes read their part of it with
// --keys=DIR.
//
//   DIR/allowlist     "ROLE NAME PUBLIC_KEY" per node (public: copy it to every machine)
//   DIR/NAME.key      "public ROLE NAME KEY" and "secret ROLE NAME KEY" (mode 0600: that
//                     node's machine only)
//
// Roles: coordinator (named "coordinator"), host ("host-N"), trainer ("trainer-N"),
// operator (any name; syctl and sy-local use "operator-0" unless told otherwise).
// Thread-compatible: functions of the files.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/transport/zmq_transport.h"

namespace sy::cluster {

std::string AllowlistPath(const std::string& dir);
std::string NodeKeyPath(const std::string& dir, const std::string& name);

// Writes a new key directory: the coordinator, hosts host-0..N-1, trainers
// trainer-0..M-1, operators operator-0..K-1. AlreadyExists when DIR/allowlist exists
// (keys are never overwritten); nothing is written for bad counts.
absl::Status WriteClusterKeys(const std::string& dir, int hosts, int trainers, int operators);
// Adds node `name` with `role` to an existing key directory (its key file, an allowlist
// line). InvalidArgument for an unknown role or a name the role does not allow;
// AlreadyExists for a name already listed.
absl::Status AddNodeKey(const std::string& dir, const std::string& role, const std::string& name);

// What a node runs with: keys from `keys_dir`, or plain TCP with `insecure`.
struct NodeSecurity {
  std::string keys_dir;
  bool insecure = false;
  // Connections the node's bound socket holds at most (ZmqOptions.max_connections).
  size_t max_connections = 2048;
};

// InvalidArgument saying what is missing and how to make it (`syctl keygen --cluster`)
// when neither keys nor --insecure were given, or both were; or when max_connections is 0.
absl::Status CheckNodeSecurity(const NodeSecurity& security);

// Node `name`'s transport keys: its key pair (as server and client), and the allowlist
// re-read from the directory when it changes. Without a key directory: none, plain TCP
// (logged as a warning with `insecure`; binaries require one of the two first). InvalidArgument naming the file for a missing or bad key file, a name
// the allowlist lacks or lists with another key.
absl::StatusOr<transport::CurveKeys> LoadNodeCurve(const NodeSecurity& security, const std::string& name);

}  // namespace sy::cluster
