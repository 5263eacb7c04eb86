// The growing host set of a trainer (see host_peers.h).
#include "services/trainer/host_peers.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sy::trainer {

std::optional<int> HostIndexOf(absl::string_view host_id) {
  if (!absl::StartsWith(host_id, "host-")) return std::nullopt;
  const absl::string_view digits = host_id.substr(5);
  if (digits.empty()) return std::nullopt;
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  int index = -1;
  if (!absl::SimpleAtoi(digits, &index) || index < 0) return std::nullopt;
  return index;
}

HostPeers::HostPeers(const std::vector<std::string>& endpoints) : initial_(static_cast<int>(endpoints.size())) {
  for (size_t i = 0; i < endpoints.size(); ++i) hosts_.push_back({absl::StrCat("host-", i), endpoints[i]});
}

std::unique_ptr<HostPeers> HostPeers::Fixed(const std::vector<std::string>& names) {
  auto peers = std::make_unique<HostPeers>(std::vector<std::string>(names.size()));
  for (size_t i = 0; i < names.size(); ++i) peers->hosts_[i].peer = names[i];
  return peers;
}

void HostPeers::AdoptInitial(const std::map<std::string, std::string>& endpoints) {
  absl::MutexLock lock(&mu_);
  for (const auto& [host, endpoint] : endpoints) {
    const std::optional<int> index = HostIndexOf(host);
    if (!index || *index >= initial_ || endpoint.empty()) continue;
    hosts_[static_cast<size_t>(*index)].endpoint = endpoint;
  }
}

absl::StatusOr<std::vector<HostPeers::Change>> HostPeers::Follow(const std::map<std::string, std::string>& endpoints,
                                                                 const Connect& connect) {
  std::vector<Change> changes;
  for (const auto& [host, endpoint] : endpoints) {
    const std::optional<int> index = HostIndexOf(host);
    if (!index || endpoint.empty()) continue;
    const size_t i = static_cast<size_t>(*index);
    bool joined = false;
    {
      absl::MutexLock lock(&mu_);
      if (i < hosts_.size() && hosts_[i].endpoint == endpoint) continue;
      joined = i >= hosts_.size() || hosts_[i].peer.empty();
    }
    const std::string peer = absl::StrCat(host, "@", endpoint);
    // Connect outside the lock: the data path keeps reading the peers meanwhile.
    if (absl::Status s = connect(peer, endpoint); !s.ok() && !absl::IsAlreadyExists(s)) {
      return absl::Status(s.code(), absl::StrCat("connecting to ", host, " at ", endpoint, ": ", s.message()));
    }
    {
      absl::MutexLock lock(&mu_);
      if (i >= hosts_.size()) hosts_.resize(i + 1);
      hosts_[i] = {peer, endpoint};
    }
    changes.push_back({*index, host, endpoint, peer, joined});
  }
  return changes;
}

std::string HostPeers::Peer(int index) const {
  absl::MutexLock lock(&mu_);
  if (index < 0 || static_cast<size_t>(index) >= hosts_.size()) return "";
  return hosts_[static_cast<size_t>(index)].peer;
}

int HostPeers::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(hosts_.size());
}

}  // namespace sy::trainer
