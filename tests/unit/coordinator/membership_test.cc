// Membership: register, heartbeats, failure detection on a manual clock, restarts.
#include "services/coordinator/membership.h"

#include <chrono>

#include <gtest/gtest.h>

namespace sy::coordinator {
namespace {

using std::chrono::milliseconds;

NodeInfo Host(const std::string& id, uint64_t incarnation = 1) {
  NodeInfo n;
  n.id = id;
  n.role = NodeRole::kHost;
  n.endpoint = "tcp://127.0.0.1:1";
  n.incarnation = incarnation;
  return n;
}

TEST(MembershipTest, HeartbeatsKeepANodeAliveAndSilenceFailsItOnce) {
  Membership members(milliseconds(1000));
  actor::TimePoint t0{};
  ASSERT_TRUE(members.Register(Host("host-1"), t0, 0)->is_new);
  ASSERT_TRUE(members.Register(Host("host-0"), t0, 0).ok());
  EXPECT_TRUE(members.Expire(t0 + milliseconds(1000)).empty());  // exactly the timeout: still alive
  EXPECT_TRUE(members.Heartbeat("host-1", 1, 5, 2, false, t0 + milliseconds(900), 0).ok());
  auto failed = members.Expire(t0 + milliseconds(1500));
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].id, "host-0");
  EXPECT_TRUE(members.Expire(t0 + milliseconds(1600)).empty());  // reported once
  EXPECT_EQ(members.AliveCount(NodeRole::kHost), 1u);
  EXPECT_EQ(members.MaxStep(NodeRole::kHost), 5u);
  // A failed node's heartbeat is refused: it must register again.
  EXPECT_EQ(members.Heartbeat("host-0", 1, 0, 0, false, t0 + milliseconds(1700), 0).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(members.Register(Host("host-0"), t0 + milliseconds(1700), 0)->is_new);
  EXPECT_EQ(members.AliveCount(NodeRole::kHost), 2u);
}

TEST(MembershipTest, RestartIsANewIncarnationAndOldHeartbeatsAreRefused) {
  Membership members(milliseconds(1000));
  actor::TimePoint t0{};
  ASSERT_TRUE(members.Register(Host("h", 1), t0, 0).ok());
  auto again = members.Register(Host("h", 1), t0, 0);
  EXPECT_FALSE(again->is_new);
  EXPECT_FALSE(again->restarted);
  auto restarted = members.Register(Host("h", 2), t0, 0);
  EXPECT_TRUE(restarted->restarted);
  EXPECT_EQ(members.Heartbeat("h", 1, 0, 0, false, t0, 0).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(members.Heartbeat("h", 2, 0, 0, false, t0, 0).ok());
  EXPECT_EQ(members.Heartbeat("nobody", 1, 0, 0, false, t0, 0).code(), absl::StatusCode::kNotFound);
}

TEST(MembershipTest, BadRegistrationsAreRefused) {
  Membership members(milliseconds(1000));
  EXPECT_EQ(members.Register(Host(""), {}, 0).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(members.Register(Host("x"), {}, 0).ok());
  NodeInfo trainer = Host("x");
  trainer.role = NodeRole::kTrainer;
  EXPECT_EQ(members.Register(trainer, {}, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(members.Find("x")->role, NodeRole::kHost);
}

TEST(MembershipTest, NodesAreListedInNaturalOrderByRole) {
  Membership members(milliseconds(1000));
  for (const char* id : {"host-10", "host-2", "host-1"}) ASSERT_TRUE(members.Register(Host(id), {}, 0).ok());
  NodeInfo trainer = Host("trainer-0");
  trainer.role = NodeRole::kTrainer;
  ASSERT_TRUE(members.Register(trainer, {}, 0).ok());
  auto hosts = members.Nodes(NodeRole::kHost);
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0].id, "host-1");
  EXPECT_EQ(hosts[1].id, "host-2");
  EXPECT_EQ(hosts[2].id, "host-10");
  EXPECT_EQ(members.Nodes(NodeRole::kTrainer).size(), 1u);
  EXPECT_TRUE(members.MarkFailed("host-2"));
  EXPECT_FALSE(members.MarkFailed("host-2"));
  members.SetDraining("host-1", true);
  EXPECT_TRUE(members.Find("host-1")->draining);
}

// The coordinator stopped (SIGSTOP, a starved VM): its checks stopped with it, so when
// it runs again the silence is its own. Nobody is failed for it, the deadlines start
// again, and a node that stays silent after that is failed one timeout later.
TEST(MembershipTest, ACheckAfterTheCoordinatorItselfStoppedFailsNobody) {
  Membership members(milliseconds(1000));
  actor::TimePoint t0{};
  ASSERT_TRUE(members.Register(Host("host-0"), t0, 0).ok());
  ASSERT_TRUE(members.Register(Host("host-1"), t0, 0).ok());
  actor::Duration paused{};
  EXPECT_TRUE(members.Expire(t0 + milliseconds(250), &paused).empty());
  EXPECT_EQ(paused, actor::Duration::zero());
  // The next check comes 8 s late: both hosts look 8 s silent.
  EXPECT_TRUE(members.Expire(t0 + milliseconds(8250), &paused).empty());
  EXPECT_EQ(paused, milliseconds(8000));
  EXPECT_EQ(members.AliveCount(NodeRole::kHost), 2u);
  // host-0's queued heartbeat arrives; host-1 stays silent: failed a timeout after the pause.
  ASSERT_TRUE(members.Heartbeat("host-0", 1, 3, 0, false, t0 + milliseconds(8300), 0).ok());
  for (int t = 8500; t <= 9250; t += 250) {
    EXPECT_TRUE(members.Expire(t0 + milliseconds(t), &paused).empty()) << t;
    ASSERT_TRUE(members.Heartbeat("host-0", 1, 3, 0, false, t0 + milliseconds(t), 0).ok());
  }
  EXPECT_EQ(paused, actor::Duration::zero());
  auto failed = members.Expire(t0 + milliseconds(9500));
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].id, "host-1");
  // Checks half a timeout apart are not a pause: silence past the timeout fails as before.
  Membership steady(milliseconds(1000));
  ASSERT_TRUE(steady.Register(Host("host-0"), t0, 0).ok());
  EXPECT_TRUE(steady.Expire(t0 + milliseconds(500)).empty());
  EXPECT_TRUE(steady.Expire(t0 + milliseconds(1000)).empty());
  EXPECT_EQ(steady.Expire(t0 + milliseconds(1500), &paused).size(), 1u);
  EXPECT_EQ(paused, actor::Duration::zero());
}

TEST(MembershipTest, NodesDeadLongerThanTheBoundAreForgottenUnlessKept) {
  Membership members(milliseconds(1000));
  actor::TimePoint t0{};
  for (const char* id : {"host-0", "host-1", "host-2"}) ASSERT_TRUE(members.Register(Host(id), t0, 0).ok());
  NodeInfo trainer = Host("trainer-0");
  trainer.role = NodeRole::kTrainer;
  ASSERT_TRUE(members.Register(trainer, t0, 0).ok());
  const auto keep_host_1 = [](const NodeInfo& n) { return n.id == "host-1"; };
  // host-0 beats on; the others fall silent at t0 and fail at 1.5 s.
  ASSERT_TRUE(members.Heartbeat("host-0", 1, 0, 0, false, t0 + milliseconds(900), 0).ok());
  ASSERT_EQ(members.Expire(t0 + milliseconds(1500)).size(), 3u);
  EXPECT_TRUE(members.ForgetDead(t0 + milliseconds(5000), milliseconds(5000), keep_host_1).empty());  // exactly
  ASSERT_TRUE(members.Heartbeat("host-0", 1, 0, 0, false, t0 + milliseconds(5500), 0).ok());
  std::vector<NodeInfo> forgotten = members.ForgetDead(t0 + milliseconds(5001), milliseconds(5000), keep_host_1);
  ASSERT_EQ(forgotten.size(), 2u);
  EXPECT_EQ(forgotten[0].id, "host-2");
  EXPECT_EQ(forgotten[1].id, "trainer-0");
  EXPECT_EQ(members.Find("host-2"), nullptr);
  EXPECT_EQ(members.Find("trainer-0"), nullptr);
  ASSERT_NE(members.Find("host-1"), nullptr);  // kept (the placement lists it)
  EXPECT_TRUE(members.Find("host-0")->alive);  // alive: never forgotten, however long ago it registered
  EXPECT_EQ(members.Nodes(NodeRole::kHost).size(), 2u);
  EXPECT_TRUE(members.Nodes(NodeRole::kTrainer).empty());
  // A forgotten node is unknown: its heartbeat is refused, and it registers as new.
  EXPECT_EQ(members.Heartbeat("host-2", 1, 0, 0, false, t0 + milliseconds(6000), 0).code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(members.Register(Host("host-2"), t0 + milliseconds(6000), 0)->is_new);
}

}  // namespace
}  // namespace sy::coordinator
