// The role table at each door: what a message's authenticated role may send. Forged
// tables, restores, gradients, commits and chunks from the wrong role are denied and
// counted; a message without an identity (--insecure) passes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/cluster/peer_roles.h"

namespace sy::cluster {
namespace {

using Kind = proto::MessageKind;

transport::Message From(const std::string& role, const std::string& name) {
  transport::Message m;
  m.peer_role = role;
  m.peer_name = name;
  return m;
}

TEST(PeerRoles, EachDoorAdmitsOnlyTheRolesThatMaySendAKind) {
  metrics::Registry registry;
  auto code = [&](Door door, Kind kind, const std::string& role) {
    return CheckSenderRole(door, kind, From(role, role + "-x"), &registry).code();
  };
  const auto ok = absl::StatusCode::kOk;
  const auto denied = absl::StatusCode::kPermissionDenied;
  // Host: tables and restores from the coordinator, gradients and streams from hosts,
  // the data path from trainers.
  EXPECT_EQ(code(Door::kHost, Kind::PLACEMENT, "coordinator"), ok);
  EXPECT_EQ(code(Door::kHost, Kind::PLACEMENT, "trainer"), denied);
  EXPECT_EQ(code(Door::kHost, Kind::PLACEMENT, "host"), denied);
  EXPECT_EQ(code(Door::kHost, Kind::REPLICA_GRADIENTS, "host"), ok);
  EXPECT_EQ(code(Door::kHost, Kind::REPLICA_GRADIENTS, "trainer"), denied);
  EXPECT_EQ(code(Door::kHost, Kind::STATE_STREAM, "operator"), denied);
  EXPECT_EQ(code(Door::kHost, Kind::STEP_COMMIT, "trainer"), ok);
  EXPECT_EQ(code(Door::kHost, Kind::STEP_COMMIT, "host"), denied);
  EXPECT_EQ(code(Door::kHost, Kind::PARAM_PUSH, "operator"), denied);
  // Coordinator: chunks from hosts, admin from operators.
  EXPECT_EQ(code(Door::kCoordinator, Kind::CHECKPOINT_CHUNK, "host"), ok);
  EXPECT_EQ(code(Door::kCoordinator, Kind::CHECKPOINT_CHUNK, "trainer"), denied);
  EXPECT_EQ(code(Door::kCoordinator, Kind::ADMIN, "host"), denied);
  EXPECT_EQ(code(Door::kCoordinator, Kind::REGISTER, "operator"), denied);
  // Trainer: only the coordinator's orders.
  EXPECT_EQ(code(Door::kTrainer, Kind::TRAINER_CONTROL, "coordinator"), ok);
  EXPECT_EQ(code(Door::kTrainer, Kind::TRAINER_CONTROL, "host"), denied);
  EXPECT_EQ(registry.GetCounter("sy_refused_total", "", {{"reason", "permission"}}).value(), 10);
  // Unauthenticated transports (--insecure) are not checked here.
  EXPECT_TRUE(CheckSenderRole(Door::kHost, Kind::PLACEMENT, transport::Message(), &registry).ok());
}

TEST(PeerRoles, NamesFollowTheirRole) {
  EXPECT_TRUE(CheckRoleName("host", "host-12").ok());
  EXPECT_FALSE(CheckRoleName("host", "host-012").ok());
  EXPECT_FALSE(CheckRoleName("host", "trainer-1").ok());
  EXPECT_TRUE(CheckRoleName("operator", "alice_2").ok());
  EXPECT_FALSE(CheckRoleName("operator", "alice@x").ok());
  EXPECT_FALSE(CheckRoleName("admin", "root").ok());
  EXPECT_TRUE(CheckSenderIsNode("host-1", From("host", "host-1"), nullptr).ok());
  EXPECT_EQ(CheckSenderIsNode("host-0", From("host", "host-1"), nullptr).code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace sy::cluster
