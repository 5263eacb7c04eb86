// The cluster allowlist (see peer_allowlist.h).
#include "common/transport/peer_allowlist.h"

#include <sys/stat.h>

#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/transport/curve_key_file.h"

namespace sy::transport {
namespace {

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read allowlist file '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int64_t ModifiedNs(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) return -1;
  return static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
}

}  // namespace

std::string NodeOfPeer(const std::string& peer) { return peer.substr(0, peer.find('@')); }

absl::StatusOr<std::vector<AllowlistEntry>> ParseAllowlist(const std::string& text) {
  absl::StatusOr<std::vector<KeyLine>> lines = ParseKeyLines(text);
  if (!lines.ok()) return lines.status();
  std::vector<AllowlistEntry> entries;
  std::set<std::string> names, keys;
  for (const KeyLine& line : *lines) {
    auto error = [&](const std::string& why) {
      return absl::InvalidArgumentError(absl::StrCat("allowlist line ", line.number, ": ", why));
    };
    if (line.names.size() != 1) return error("expected 'ROLE NAME PUBLIC_KEY'");
    if (!names.insert(line.names[0]).second) return error(absl::StrCat("second entry for node '", line.names[0], "'"));
    if (!keys.insert(line.key).second) return error("a public key listed twice");
    entries.push_back({{line.label, line.names[0]}, line.key});
  }
  return entries;
}

absl::StatusOr<std::shared_ptr<PeerAllowlist>> PeerAllowlist::FromText(const std::string& text) {
  absl::StatusOr<std::vector<AllowlistEntry>> entries = ParseAllowlist(text);
  if (!entries.ok()) return entries.status();
  std::shared_ptr<PeerAllowlist> list(new PeerAllowlist());
  absl::MutexLock lock(&list->mu_);
  list->Set(*std::move(entries));
  return list;
}

absl::StatusOr<std::shared_ptr<PeerAllowlist>> PeerAllowlist::Load(const std::string& path) {
  const int64_t modified = ModifiedNs(path);
  absl::StatusOr<std::string> text = ReadText(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::shared_ptr<PeerAllowlist>> list = FromText(*text);
  if (!list.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", list.status().message()));
  absl::MutexLock lock(&(*list)->mu_);
  (*list)->path_ = path;
  (*list)->file_mtime_ns_ = modified;
  return list;
}

void PeerAllowlist::Set(std::vector<AllowlistEntry> entries) {
  entries_ = std::move(entries);
  by_key_.clear();
  by_name_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) {
    by_key_[entries_[i].public_key] = i;
    by_name_[entries_[i].identity.name] = i;
  }
}

void PeerAllowlist::MaybeReload() {
  const absl::Time now = absl::Now();
  if (path_.empty() || now - last_try_ < absl::Seconds(1)) return;
  last_try_ = now;
  const int64_t modified = ModifiedNs(path_);
  if (modified == file_mtime_ns_) return;
  absl::StatusOr<std::string> text = ReadText(path_);
  if (!text.ok()) return;
  absl::StatusOr<std::vector<AllowlistEntry>> entries = ParseAllowlist(*text);
  if (!entries.ok()) return;  // a half-written or broken file: keep what we had
  file_mtime_ns_ = modified;
  Set(*std::move(entries));
}

std::optional<PeerIdentity> PeerAllowlist::Find(const std::string& public_key) {
  absl::MutexLock lock(&mu_);
  if (by_key_.count(public_key) == 0) MaybeReload();
  auto it = by_key_.find(public_key);
  if (it == by_key_.end()) return std::nullopt;
  return entries_[it->second].identity;
}

std::optional<std::string> PeerAllowlist::KeyOf(const std::string& name) {
  absl::MutexLock lock(&mu_);
  if (by_name_.count(name) == 0) MaybeReload();
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  return entries_[it->second].public_key;
}

std::vector<AllowlistEntry> PeerAllowlist::entries() {
  absl::MutexLock lock(&mu_);
  return entries_;
}

}  // namespace sy::transport
