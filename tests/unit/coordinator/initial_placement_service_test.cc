// The coordinator with --initial_placement
// (CoordinatorOptions::initial_placement), over real sockets with fake hosts:
// the file's shape is the model's from the start, placement waits for the hosts
// the file names, and they get exactly the file's actors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "services/coordinator/initial_placement.h"
#include "tests/unit/coordinator/service_fixture.h"

namespace sy::coordinator {
namespace {

using cluster::ActorKey;
using testing::FakeHost;
using ::testing::HasSubstr;
using testing::WaitFor;

// The fake nodes' model (1 Switch layer x 4 experts, 2 dense shards), not by
// the static rule.
constexpr char kPlacement[] =
    R"({"experts": [[["host-1"], ["host-0"], ["host-0", "host-1"], ["host-1"]]], "dense": [["host-1"], ["host-0"]]})";

TEST_F(ServiceTest, TheInitialPlacementFileFixesTheShapeWaitsForItsHostsAndPlacesItsHolders) {
  absl::StatusOr<InitialPlacement> placement = ParseInitialPlacement(kPlacement);
  ASSERT_TRUE(placement.ok()) << placement.status();
  options_.initial_placement = *placement;
  StartService();
  // The model's shape is the file's before any node registered: another one is
  // refused.
  auto other = FakeHost::Start("host-9", service_->endpoint(), 1, cluster::ModelShape{2, 8, 4});
  ASSERT_TRUE(other.ok()) << other.status();
  const absl::Status refused = (*other)->Register();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("(learned from --initial_placement)"));
  // Two hosts are in (--expected_hosts), but not host-0, which the file names:
  // no placement yet.
  auto h1 = Host("host-1"), h7 = Host("host-7");
  ASSERT_TRUE(h1->Register().ok() && h7->Register().ok());
  capnp::MallocMessageBuilder get;
  cluster::InitBody<proto::coordinator::PlacementRequest>(get, proto::MessageKind::PLACEMENT).setGet();
  const absl::Status waiting = h1->Call(get).status();
  EXPECT_EQ(waiting.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(waiting.message()), HasSubstr("waiting for the hosts --initial_placement names: host-0"));
  auto h0 = Host("host-0");
  ASSERT_TRUE(h0->Register().ok());
  ASSERT_TRUE(WaitFor([&] { return h0->table_epoch() == 1 && h1->table_epoch() == 1; }));
  EXPECT_EQ(h0->actors(), (std::vector<ActorKey>{ActorKey::Expert(0, 1), ActorKey::Expert(0, 2), ActorKey::Dense(1)}));
  EXPECT_EQ(h1->actors(), (std::vector<ActorKey>{ActorKey::Expert(0, 0), ActorKey::Expert(0, 2), ActorKey::Expert(0, 3),
                                                 ActorKey::Dense(0)}));
  EXPECT_TRUE(h7->actors().empty());  // alive, but the file gives it nothing
}

}  // namespace
}  // namespace sy::coordinator
