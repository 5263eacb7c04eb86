// The coordinator's admin door (services/coordinator: the service's routing and the
// ClusterActor's admin API): every command, with arguments that must be refused
// (restores of checkpoints that do not exist, drains and removals of unknown hosts,
// fault specs that do not parse or name unknown nodes, rebalance thresholds below 1,
// negative or not a number), reports, an unknown command, then header bytes mutated,
// over loopback TCP. Every one is answered, and a refused one leaves the membership,
// the placement and the checkpoint catalog as they were.
#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include <capnp/any.h>
#include <capnp/schema.h>

#include "proto/admin.capnp.h"
#include "services/cluster/envelope.h"
#include "tests/fuzz/coordinator_fuzz_fixture.h"
#include "tests/fuzz/fuzz_rng.h"

namespace sy::fuzz {
namespace {

constexpr uint64_t kSeed = 0x5EED0050;
constexpr int kIterations = 1500;

const char* const kUnknownHosts[] = {"host-9", "", "trainer-0", "coordinator"};

// An admin request with a union member no schema has (an admin tool from a newer version).
void SetUnknownCommand(proto::admin::AdminRequest::Builder body, uint16_t member) {
  const auto schema = capnp::Schema::from<proto::admin::AdminRequest>().getProto().getStruct();
  auto data = capnp::toAny(body).getDataSection();
  const size_t at = schema.getDiscriminantOffset() * sizeof(uint16_t);
  data[at] = static_cast<capnp::byte>(member & 0xff);
  data[at + 1] = static_cast<capnp::byte>(member >> 8);
}

double BadThreshold(FuzzRng& rng) {
  switch (rng.Below(5)) {
    case 0: return std::numeric_limits<double>::quiet_NaN();
    case 1: return -1;
    case 2: return 0.5;
    case 3: return -std::numeric_limits<double>::infinity();
    default: return 1.5;  // a valid one (dry runs only)
  }
}

Seed MakeAdmin(FuzzRng& rng) {
  Seed seed;
  auto body = cluster::InitBody<proto::admin::AdminRequest>(*seed.header, proto::MessageKind::ADMIN);
  switch (rng.Below(12)) {
    case 0: body.setStatus(); seed.summary = "status"; break;
    case 1: body.setHosts(); seed.summary = "hosts"; break;
    case 2: body.setExperts(); seed.summary = "experts"; break;
    case 3: body.setCheckpointList(); seed.summary = "checkpoint list"; break;
    case 4: body.setHostLoadSeries(); seed.summary = "host load series"; break;
    case 5:
      // Checkpoint 1 is being taken, none is committed: every restore is refused.
      body.setCheckpointRestore(rng.Below(4));
      seed.summary = "restore " + std::to_string(body.getCheckpointRestore());
      break;
    case 6: {
      auto rebalance = body.initRebalance();
      rebalance.setDryRun(!rng.OneIn(4));
      rebalance.setThreshold(rebalance.getDryRun() ? BadThreshold(rng) : -1);
      seed.summary = "rebalance threshold=" + std::to_string(rebalance.getThreshold());
      break;
    }
    case 7:
      body.setDrain(kUnknownHosts[rng.Below(4)]);
      seed.summary = "drain '" + std::string(body.getDrain().cStr()) + "'";
      break;
    case 8:
      body.setRemoveHost(kUnknownHosts[rng.Below(4)]);
      seed.summary = "remove '" + std::string(body.getRemoveHost().cStr()) + "'";
      break;
    case 9: {
      auto faults = body.initFaults();
      // A spec that parses only for a node that does not exist; for the others one that never parses.
      const bool unknown_node = rng.OneIn(2);
      faults.setNodeId(unknown_node ? "host-9" : (rng.OneIn(2) ? "" : "host-0"));
      faults.setSpec(unknown_node ? "drop=0.5" : (rng.OneIn(2) ? "bogus_fault_key=1" : "drop=many"));
      seed.summary = "faults '" + std::string(faults.getNodeId().cStr()) + "' '" + faults.getSpec().cStr() + "'";
      break;
    }
    default: {
      const uint16_t member = static_cast<uint16_t>(11 + rng.Below(100));
      SetUnknownCommand(body, member);
      seed.summary = "unknown command " + std::to_string(member);
    }
  }
  return seed;
}

using AdminFuzz = CoordinatorFuzzTest;

TEST_F(AdminFuzz, AdminRequestsAreAnsweredAndRefusalsChangeNothing) {
  const DoorTally tally =
      FuzzDoor(*door_, {kSeed, kIterations, MakeAdmin, [this] { return CoordinatorState(); }, [this] { Settle(); }});
  EXPECT_GT(tally.refused, kIterations / 4);
  EXPECT_GT(tally.answered, kIterations / 10);
}

// A rebalance threshold that is not a number is bad input like one below 1.
TEST_F(AdminFuzz, RebalanceThresholdNotANumberIsRefused) {
  for (double threshold : {std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::quiet_NaN()}) {
    auto reply = Admin([threshold](proto::admin::AdminRequest::Builder r) {
      auto rebalance = r.initRebalance();
      rebalance.setDryRun(true);
      rebalance.setThreshold(threshold);
    });
    EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument) << reply.status();
  }
}

}  // namespace
}  // namespace sy::fuzz
