// syctl's key commands (see keygen_command.h).
#include "services/syctl/keygen_command.h"

#include <zmq.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/cluster/cluster_keys.h"
#include "services/syctl/output.h"

namespace sy::syctl {
namespace {

// A fresh key pair from zmq_curve_keypair, printed.
int PrintKeyPair(const Invocation& inv, std::ostream& out, std::ostream& err) {
  char public_key[41], secret_key[41];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    err << "syctl: keygen: zmq_curve_keypair failed: " << zmq_strerror(zmq_errno())
        << " (libzmq built without CURVE?)\n";
    return kExitFailed;
  }
  if (inv.json) {
    JsonWriter j(out);
    j.BeginObject();
    j.Key("public"); j.String(public_key);
    j.Key("secret"); j.String(secret_key);
    j.EndObject();
    out << "\n";
  } else {
    out << "public " << public_key << "\nsecret " << secret_key << "\n";
  }
  return kExitOk;
}

// The value of count option `name` (0 when not given); false when it is not a number.
bool CountOption(const Invocation& inv, const std::string& name, int* count) {
  auto it = inv.options.find(name);
  *count = 0;
  return it == inv.options.end() || absl::SimpleAtoi(it->second, count);
}

int Failed(const absl::Status& status, std::ostream& err) {
  if (status.code() == absl::StatusCode::kInvalidArgument) return Usage(std::string(status.message()), err);
  err << "syctl: keygen: " << status.message() << "\n";
  return kExitFailed;
}

}  // namespace

int Keygen(const Invocation& inv, std::ostream& out, std::ostream& err) {
  auto cluster = inv.options.find("cluster");
  if (cluster == inv.options.end()) {
    if (absl::Status usage = ExpectArguments(inv, 0, {}); !usage.ok()) return Usage(std::string(usage.message()), err);
    return PrintKeyPair(inv, out, err);
  }
  const std::string& dir = cluster->second;
  if (inv.options.count("add") != 0) {
    if (absl::Status usage = ExpectArguments(inv, 2, {"cluster", "add"}); !usage.ok()) {
      return Usage(absl::StrCat(usage.message(), " (keygen --cluster=DIR --add ROLE NAME)"), err);
    }
    if (absl::Status s = cluster::AddNodeKey(dir, inv.words[1], inv.words[2]); !s.ok()) return Failed(s, err);
    out << "added " << inv.words[1] << " " << inv.words[2] << ": " << cluster::NodeKeyPath(dir, inv.words[2])
        << " (copy it to that node's machine only) and a line in " << cluster::AllowlistPath(dir)
        << " (copy it to every machine; running nodes re-read it)\n";
    return kExitOk;
  }
  if (absl::Status usage = ExpectArguments(inv, 0, {"cluster", "hosts", "trainers", "operators"}); !usage.ok()) {
    return Usage(std::string(usage.message()), err);
  }
  int hosts = 0, trainers = 0, operators = 0;
  if (!CountOption(inv, "hosts", &hosts) || !CountOption(inv, "trainers", &trainers) ||
      !CountOption(inv, "operators", &operators)) {
    return Usage("--hosts, --trainers and --operators take whole numbers", err);
  }
  if (absl::Status s = cluster::WriteClusterKeys(dir, hosts, trainers, operators); !s.ok()) return Failed(s, err);
  out << "wrote " << cluster::AllowlistPath(dir) << " and " << 1 + hosts + trainers + operators
      << " node key files (NAME.key, mode 0600) for the coordinator, " << hosts << " hosts, " << trainers
      << " trainers and " << operators << " operators\n";
  return kExitOk;
}

}  // namespace sy::syctl
