// The trainer's expert hosts by index ("host-N" -> N): the peer name each is
// reached at on the trainer's RpcNode. Exists because the host set is not fixed
// at start: a host that joins later (a new id in the coordinator's table) gets a
// new peer at its own index N (indices are stable, so a placement keeps naming
// the same host), and a host that came back on a new endpoint gets a new peer
// under the same index. Every data path user (remote
// expert executor, dense parameter client, step client, placement size) reads
// the one shared HostPeers. Thread-safe.
//
//   HostPeers peers({"tcp://127.0.0.1:4000", "tcp://127.0.0.1:4001"});  // --hosts: peers host-0, host-1
//   auto added = peers.Follow(table.endpoints, [&](auto& peer, auto& endpoint) {
//     return transport.Connect(peer, endpoint); });                     // host-2 joined: peer "host-2@tcp://..."
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace sy::trainer {

// N for a host id "host-N" (N >= 0, decimal); nullopt for anything else.
std::optional<int> HostIndexOf(absl::string_view host_id);

class HostPeers {
 public:
  // Host i of `endpoints` (the --hosts list) is peer "host-i", connected there by the caller.
  explicit HostPeers(const std::vector<std::string>& endpoints);
  // Host i is peer `names[i]`, already connected by the caller (a fixed set: tests, tools).
  static std::unique_ptr<HostPeers> Fixed(const std::vector<std::string>& names);

  // Connects `peer` to `endpoint` on the trainer's transport.
  using Connect = std::function<absl::Status(const std::string& peer, const std::string& endpoint)>;

  // A host reached at a new peer by Follow.
  struct Change {
    int index = 0;
    std::string host;      // "host-N"
    std::string endpoint;
    std::string peer;
    bool joined = false;   // a host index this trainer did not know before
  };

  // Follows a coordinator table's endpoints (host id -> endpoint): every "host-N"
  // with an endpoint other than the one known is connected as peer
  // "host-N@endpoint" (one connection per (host, endpoint): a restarted host is a
  // new peer), growing the set when N is new. Ids that are not "host-N" and
  // empty endpoints are skipped. On a connect error the hosts connected before it
  // stay followed, that host is unchanged, and the error names it.
  absl::StatusOr<std::vector<Change>> Follow(const std::map<std::string, std::string>& endpoints,
                                             const Connect& connect);
  // Takes the table's endpoint of every host of --hosts as the one already
  // connected (the same process, maybe spelled differently), without connecting;
  // other hosts are left to Follow.
  void AdoptInitial(const std::map<std::string, std::string>& endpoints);

  // Peer name of host `index`; "" for an index no endpoint named yet.
  std::string Peer(int index) const;
  // 1 + the highest index known (indices in between without an endpoint are unknown).
  int size() const;

 private:
  struct Entry {
    std::string peer;      // "" while unknown
    std::string endpoint;
  };
  mutable absl::Mutex mu_;
  std::vector<Entry> hosts_ ABSL_GUARDED_BY(mu_);
  int initial_ = 0;
};

}  // namespace sy::trainer
