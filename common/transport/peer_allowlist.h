// The cluster's allowlist of CurveZMQ public keys: which key belongs to which node
// (its role and name). The ZeroMQ transport admits only listed keys during the
// CURVE handshake, stamps every received message with the sender's role and name
// from here (never from the message body), and finds the server key of a peer it
// connects to by the peer's node name.
//
// File format (a curve_key_file): one "ROLE NAME KEY" line per node, e.g.
//   host host-0 <40-character Z85 public key>
// A list loaded from a file re-reads it (at most once a second, and only when the
// file changed) when asked about a key or name it does not know: a node added with
// `syctl keygen --cluster DIR --add ROLE NAME` is admitted once the new allowlist file
// is in place, without a restart. A file that no longer parses leaves the list as it was.
//
// Thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sy::transport {

// Who an authenticated key is.
struct PeerIdentity {
  std::string role;  // coordinator, host, trainer or operator
  std::string name;  // node name, e.g. "host-0" (also its routing id)
};

struct AllowlistEntry {
  PeerIdentity identity;
  std::string public_key;  // Z85
};

// The entries of an allowlist file's text. InvalidArgument naming the line for a line
// without exactly one name, or a name or key listed twice.
absl::StatusOr<std::vector<AllowlistEntry>> ParseAllowlist(const std::string& text);

// The node name in a peer name or routing id: "host-1@tcp://10.0.0.2:6001" -> "host-1",
// "trainer-0@5f0c9a1e2b3d4c6f" -> "trainer-0".
std::string NodeOfPeer(const std::string& peer);

class PeerAllowlist {
 public:
  // A fixed list (tests, tools).
  static absl::StatusOr<std::shared_ptr<PeerAllowlist>> FromText(const std::string& text);
  // A list read from `path`, re-read when a key or name is unknown (see above).
  static absl::StatusOr<std::shared_ptr<PeerAllowlist>> Load(const std::string& path);

  // The identity of `public_key`; nullopt when it is not listed.
  std::optional<PeerIdentity> Find(const std::string& public_key);
  // The public key of node `name`; nullopt when it is not listed.
  std::optional<std::string> KeyOf(const std::string& name);
  // Every entry, in file order.
  std::vector<AllowlistEntry> entries();

 private:
  PeerAllowlist() = default;
  void Set(std::vector<AllowlistEntry> entries) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Re-reads the file when it changed and the last try is over a second old.
  void MaybeReload() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::string path_;  // empty: fixed
  absl::Mutex mu_;
  std::vector<AllowlistEntry> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> by_key_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> by_name_ ABSL_GUARDED_BY(mu_);
  absl::Time last_try_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t file_mtime_ns_ ABSL_GUARDED_BY(mu_) = -1;
};

}  // namespace sy::transport
