// The role table (see peer_roles.h).
#include "services/cluster/peer_roles.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/transport/refusals.h"

namespace sy::cluster {
namespace {

using Kind = proto::MessageKind;

// Roles as bits, in kRoleNames order.
constexpr const char* kRoleNames[] = {kRoleCoordinator, kRoleHost, kRoleTrainer, kRoleOperator};
enum RoleBit : unsigned { kCoordinator = 1, kHost = 2, kTrainer = 4, kOperator = 8 };

// The roles that may send `kind` to `door`, as RoleBits; 0: nobody.
unsigned AllowedRoles(Door door, Kind kind) {
  if (kind == Kind::PING) return kCoordinator | kHost | kTrainer | kOperator;
  switch (door) {
    case Door::kCoordinator:
      switch (kind) {
        case Kind::REGISTER:
        case Kind::HEARTBEAT: return kHost | kTrainer;
        case Kind::PLACEMENT: return kHost | kTrainer | kOperator;
        case Kind::LOAD_REPORT: return kTrainer;
        case Kind::CHECKPOINT_CHUNK:
        case Kind::CHECKPOINT_MANIFEST: return kHost;
        case Kind::ADMIN: return kOperator;
        default: return 0;
      }
    case Door::kHost:
      switch (kind) {
        case Kind::EXPERT_FORWARD:
        case Kind::EXPERT_BACKWARD:
        case Kind::PARAM_PUSH:
        case Kind::PARAM_PULL:
        case Kind::STEP_COMMIT: return kTrainer;
        case Kind::PLACEMENT: return kCoordinator;
        case Kind::STATE_STREAM: return kCoordinator | kHost;
        case Kind::REPLICA_GRADIENTS:
        case Kind::LIVE_STATE: return kHost;
        default: return 0;
      }
    case Door::kTrainer:
      return kind == Kind::TRAINER_CONTROL ? unsigned{kCoordinator} : 0u;
  }
  return 0;
}

bool IsIndexedName(const std::string& name, absl::string_view prefix) {
  int index = 0;
  return absl::StartsWith(name, prefix) && absl::SimpleAtoi(name.substr(prefix.size()), &index) && index >= 0 &&
         absl::StrCat(prefix, index) == name;
}

absl::Status CountedRefusal(metrics::Registry* registry, absl::Status refusal) {
  return transport::Refuse(registry, "permission", std::move(refusal));
}

}  // namespace

absl::Status CheckRoleName(const std::string& role, const std::string& name) {
  bool ok = false;
  if (role == kRoleCoordinator) {
    ok = name == kCoordinatorName;
  } else if (role == kRoleHost) {
    ok = IsIndexedName(name, "host-");
  } else if (role == kRoleTrainer) {
    ok = IsIndexedName(name, "trainer-");
  } else if (role == kRoleOperator) {
    ok = !name.empty();
    for (char c : name) ok = ok && (absl::ascii_isalnum(c) || c == '-' || c == '_');
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown role '", role, "' (one of coordinator, host, trainer, operator)"));
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not a ", role, " name (coordinator: coordinator, ",
                                                   "host: host-N, trainer: trainer-N, operator: letters, digits, - _)"));
  }
  return absl::OkStatus();
}

absl::Status CheckSenderRole(Door door, proto::MessageKind kind, const transport::Message& message,
                             metrics::Registry* registry) {
  if (message.peer_role.empty()) return absl::OkStatus();
  const unsigned allowed = AllowedRoles(door, kind);
  std::vector<const char*> names;
  for (unsigned i = 0; i < 4; ++i) {
    if ((allowed & (1u << i)) == 0) continue;
    if (message.peer_role == kRoleNames[i]) return absl::OkStatus();
    names.push_back(kRoleNames[i]);
  }
  return CountedRefusal(registry, absl::PermissionDeniedError(absl::StrCat(
                                      message.peer_role, " ", message.peer_name, " may not send message kind ",
                                      static_cast<int>(kind), " here (allowed: ",
                                      names.empty() ? "nobody" : absl::StrJoin(names, ", "), ")")));
}

absl::Status CheckSenderIsNode(const std::string& node_id, const transport::Message& message,
                               metrics::Registry* registry) {
  if (message.peer_name.empty() || message.peer_name == node_id) return absl::OkStatus();
  return CountedRefusal(registry, absl::PermissionDeniedError(absl::StrCat(
                                      "the key of ", message.peer_name, " may not speak for node '", node_id, "'")));
}

}  // namespace sy::cluster
