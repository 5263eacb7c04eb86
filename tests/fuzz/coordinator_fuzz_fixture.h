// CoordinatorFuzzTest: the fixture of the coordinator's fuzz tests. A coordinator on
// loopback with a fake host (host-0) and a fake trainer (trainer-0) of the fake nodes'
// model (tests/unit/coordinator/fake_node.h) registered, so the placement is in force;
// host-0 is said to have reached step 3 and checkpoint 1 is being taken at step 3
// (host-0 never streams it: chunks of it are only what the tests send). Node failure
// and checkpoint deadlines are minutes away, so nothing changes but what requests do.
// A RawDoor sends fuzzed bytes; the admin API reads the coordinator's state as text.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "common/metrics/registry.h"
#include "services/coordinator/coordinator_service.h"
#include "services/syctl/admin_client.h"
#include "tests/fuzz/raw_door.h"
#include "tests/unit/coordinator/fake_node.h"

namespace sy::fuzz {

inline constexpr uint64_t kFuzzStep = 3;

class CoordinatorFuzzTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Status, nodes (less their heartbeat times), experts and the checkpoint list, as text.
  std::string CoordinatorState();
  // Reads the state until two reads agree (at most 50 reads): what an answered
  // request started has settled.
  void Settle();
  absl::StatusOr<cluster::AdminReplyMessage> Admin(const std::function<void(proto::admin::AdminRequest::Builder)>& fill);

  std::string db_;
  metrics::Registry registry_;
  std::unique_ptr<coordinator::CoordinatorService> service_;
  std::unique_ptr<coordinator::testing::FakeHost> host_;
  std::unique_ptr<coordinator::testing::FakeTrainer> trainer_;
  std::unique_ptr<syctl::AdminClient> admin_;
  std::unique_ptr<RawDoor> door_;  // from "raw-client"
  uint64_t checkpoint_id_ = 0;     // the one being taken
};

}  // namespace sy::fuzz
