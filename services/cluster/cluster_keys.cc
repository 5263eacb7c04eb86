// Writing and reading the cluster key directory (see cluster_keys.h).
#include "services/cluster/cluster_keys.h"

#include <sys/stat.h>
#include <zmq.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/transport/curve_key_file.h"
#include "common/transport/peer_allowlist.h"
#include "services/cluster/peer_roles.h"

namespace sy::cluster {
namespace {

struct NewNode {
  std::string role, name, public_key, secret_key;
};

absl::StatusOr<NewNode> MakeNode(const std::string& role, const std::string& name) {
  NewNode node{role, name, "", ""};
  char public_key[41], secret_key[41];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return absl::InternalError(absl::StrCat("zmq_curve_keypair: ", zmq_strerror(zmq_errno())));
  }
  node.public_key = public_key;
  node.secret_key = secret_key;
  return node;
}

// Writes `text` to `path` readable by its owner only.
absl::Status WritePrivate(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return absl::InvalidArgumentError(absl::StrCat("cannot write '", path, "'"));
  chmod(path.c_str(), 0600);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("writing '", path, "' failed"));
  return absl::OkStatus();
}

std::string KeyFileText(const NewNode& node) {
  return absl::StrCat("# Switchyard node key of ", node.role, " ", node.name,
                      ": keep it on that node's machine only.\npublic ", node.role, " ", node.name, " ",
                      node.public_key, "\nsecret ", node.role, " ", node.name, " ", node.secret_key, "\n");
}

std::string AllowlistLine(const NewNode& node) {
  return absl::StrCat(node.role, " ", node.name, " ", node.public_key, "\n");
}

// Writes the nodes' key files, then the allowlist (appended to, or new with a header).
absl::Status WriteNodes(const std::string& dir, const std::vector<NewNode>& nodes, bool new_allowlist) {
  for (const NewNode& node : nodes) {
    if (absl::Status s = WritePrivate(NodeKeyPath(dir, node.name), KeyFileText(node)); !s.ok()) return s;
  }
  std::ofstream out(AllowlistPath(dir), new_allowlist ? std::ios::trunc : std::ios::app);
  if (!out) return absl::InvalidArgumentError(absl::StrCat("cannot write '", AllowlistPath(dir), "'"));
  if (new_allowlist) out << "# Switchyard cluster allowlist: ROLE NAME PUBLIC_KEY. Copy it to every machine.\n";
  for (const NewNode& node : nodes) out << AllowlistLine(node);
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("writing '", AllowlistPath(dir), "' failed"));
  return absl::OkStatus();
}

}  // namespace

std::string AllowlistPath(const std::string& dir) { return dir + "/allowlist"; }
std::string NodeKeyPath(const std::string& dir, const std::string& name) { return absl::StrCat(dir, "/", name, ".key"); }

absl::Status WriteClusterKeys(const std::string& dir, int hosts, int trainers, int operators) {
  if (hosts < 1 || trainers < 0 || operators < 0) {
    return absl::InvalidArgumentError("keygen --cluster needs --hosts >= 1, --trainers >= 0 and --operators >= 0");
  }
  if (std::filesystem::exists(AllowlistPath(dir))) {
    return absl::AlreadyExistsError(absl::StrCat(AllowlistPath(dir), " exists: keys are never overwritten (add a "
                                                 "node with --add ROLE NAME, or pick a new directory)"));
  }
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return absl::InvalidArgumentError(absl::StrCat("cannot create '", dir, "': ", error.message()));
  std::vector<NewNode> nodes;
  auto add = [&](const std::string& role, const std::string& name) -> absl::Status {
    absl::StatusOr<NewNode> node = MakeNode(role, name);
    if (!node.ok()) return node.status();
    nodes.push_back(*std::move(node));
    return absl::OkStatus();
  };
  if (absl::Status s = add(kRoleCoordinator, kCoordinatorName); !s.ok()) return s;
  for (int i = 0; i < hosts; ++i) if (absl::Status s = add(kRoleHost, absl::StrCat("host-", i)); !s.ok()) return s;
  for (int i = 0; i < trainers; ++i) {
    if (absl::Status s = add(kRoleTrainer, absl::StrCat("trainer-", i)); !s.ok()) return s;
  }
  for (int i = 0; i < operators; ++i) {
    if (absl::Status s = add(kRoleOperator, absl::StrCat("operator-", i)); !s.ok()) return s;
  }
  return WriteNodes(dir, nodes, /*new_allowlist=*/true);
}

absl::Status AddNodeKey(const std::string& dir, const std::string& role, const std::string& name) {
  if (absl::Status s = CheckRoleName(role, name); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<transport::PeerAllowlist>> list = transport::PeerAllowlist::Load(AllowlistPath(dir));
  if (!list.ok()) return list.status();
  if ((*list)->KeyOf(name).has_value()) {
    return absl::AlreadyExistsError(absl::StrCat("node '", name, "' is already in ", AllowlistPath(dir)));
  }
  absl::StatusOr<NewNode> node = MakeNode(role, name);
  if (!node.ok()) return node.status();
  return WriteNodes(dir, {*node}, /*new_allowlist=*/false);
}

absl::Status CheckNodeSecurity(const NodeSecurity& security) {
  if (security.max_connections == 0) return absl::InvalidArgumentError("--max_connections must be at least 1");
  if (security.insecure && !security.keys_dir.empty()) {
    return absl::InvalidArgumentError("--keys and --insecure exclude each other");
  }
  if (!security.insecure && security.keys_dir.empty()) {
    return absl::InvalidArgumentError(
        "no cluster keys: give --keys=DIR, a cluster key directory holding this node's NAME.key and the "
        "allowlist (make one with `syctl keygen --cluster DIR --hosts N --trainers M --operators 1`), or "
        "--insecure for plain, unauthenticated TCP");
  }
  return absl::OkStatus();
}

absl::StatusOr<transport::CurveKeys> LoadNodeCurve(const NodeSecurity& security, const std::string& name) {
  if (security.keys_dir.empty()) {
    if (security.insecure) {
      SY_LOG(WARNING) << name << ": --insecure: plain TCP, no authentication or encryption on any socket";
    }
    return transport::CurveKeys();
  }
  const std::string path = NodeKeyPath(security.keys_dir, name);
  absl::StatusOr<std::vector<transport::KeyLine>> lines = transport::ReadKeyFile(path);
  if (!lines.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--keys: no key file for node '", name, "': ",
                                                   lines.status().message()));
  }
  transport::CurveKeys keys;
  for (const transport::KeyLine& line : *lines) {
    if (line.label == "public") keys.client_public = line.key;
    if (line.label == "secret") keys.client_secret = line.key;
  }
  if (!transport::IsPublicKeyOf(keys.client_public, keys.client_secret)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": needs matching 'public' and 'secret' lines"));
  }
  keys.server_secret = keys.client_secret;
  absl::StatusOr<std::shared_ptr<transport::PeerAllowlist>> list =
      transport::PeerAllowlist::Load(AllowlistPath(security.keys_dir));
  if (!list.ok()) return absl::InvalidArgumentError(absl::StrCat("--keys: ", list.status().message()));
  if ((*list)->KeyOf(name) != keys.client_public) {
    return absl::InvalidArgumentError(absl::StrCat(AllowlistPath(security.keys_dir), " does not list node '", name,
                                                   "' with the public key of ", path));
  }
  keys.allowlist = *std::move(list);
  return keys;
}

}  // namespace sy::cluster
