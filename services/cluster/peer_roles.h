// Who may send what: the one table of the roles allowed to send each message kind
// to each service's door, checked against the sender's authenticated identity
// (transport::Message::peer_role/peer_name, stamped by the transport from the cluster
// allowlist), never against a name in the body. A message without an identity came
// over a transport without an allowlist (--insecure, in-process tests) and passes.
// Refusals are PermissionDenied; the doors count them in sy_refused_total{reason="permission"}.
// Thread-safe: pure functions.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/metrics/registry.h"
#include "common/transport/message.h"
#include "proto/envelope.capnp.h"

namespace sy::cluster {

inline constexpr char kRoleCoordinator[] = "coordinator";
inline constexpr char kRoleHost[] = "host";
inline constexpr char kRoleTrainer[] = "trainer";
inline constexpr char kRoleOperator[] = "operator";
inline constexpr char kCoordinatorName[] = "coordinator";

// The services' doors.
enum class Door { kCoordinator, kHost, kTrainer };

// InvalidArgument unless `role` is a known role and `name` one it may have:
// coordinator "coordinator", host "host-N", trainer "trainer-N", operator any word
// of letters, digits, '-' and '_' (no '@').
absl::Status CheckRoleName(const std::string& role, const std::string& name);

// PermissionDenied when `message`'s authenticated sender may not send `kind` to `door`;
// counted in `registry` (optional) as sy_refused_total{reason="permission"}.
absl::Status CheckSenderRole(Door door, proto::MessageKind kind, const transport::Message& message,
                             metrics::Registry* registry);

// PermissionDenied when an authenticated `message` names another node (`node_id`, e.g. a
// registration's) than the one its key belongs to; counted like CheckSenderRole.
absl::Status CheckSenderIsNode(const std::string& node_id, const transport::Message& message,
                               metrics::Registry* registry);

}  // namespace sy::cluster
