// HostFuzzTest: the fixture of the expert host's fuzz tests. host-0 of a small Switch
// model (2 layers of 4 experts, micro-batches M = 2) serving on the in-process
// network; a trainer-side RpcNode and StepClient for valid calls; a RawDoor for fuzzed
// bytes; and the host's state as text, which a refused request must leave unchanged.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/metrics/registry.h"
#include "common/transport/inproc_transport.h"
#include "common/transport/rpc.h"
#include "gpu/backend.h"
#include "services/cluster/actor_key.h"
#include "services/expert_host/host_service.h"
#include "services/trainer/step_client.h"
#include "tests/fuzz/raw_door.h"
#include "tests/support/small_host_model.h"

namespace sy::fuzz {

inline constexpr int kHostMicroBatches = 2;
inline constexpr uint32_t kHostDModel = ::sy::testing::kSmallHostDModel;
inline constexpr uint32_t kHostMaxRows = 8;

using ::sy::testing::SmallHostModel;

class HostFuzzTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Every actor's state checksum on host-0, from a status query.
  std::vector<uint64_t> Checksums();
  // The accepted placement epoch, the actors held (and how many await a restore) and
  // every actor's checksum.
  std::string HostState();
  // Every actor of the model, placed as the static share of 2 hosts (host-0, host-1).
  std::map<cluster::ActorKey, std::vector<std::string>> StaticTable() const;
  // A placement update of `entries` at `epoch` sent to host-0 by the trainer client.
  absl::Status SendPlacement(uint64_t epoch, const std::map<cluster::ActorKey, std::vector<std::string>>& entries);
  // The endpoints the tables name.
  static std::map<std::string, std::string> Endpoints();
  // FuzzDoor through door_ with `make`'s requests, HostState() as the state; checks that
  // some were refused and some answered, and that the host still answers a status query.
  void FuzzHostDoor(uint64_t seed, int iterations, std::function<Seed(FuzzRng&)> make, int min_answered);

  transport::InProcNetwork net_;
  metrics::Registry registry_;
  std::unique_ptr<gpu::Backend> backend_;
  expert_host::HostConfig config_;
  std::unique_ptr<expert_host::HostService> service_;
  std::unique_ptr<transport::RpcNode> server_, client_;
  std::unique_ptr<trainer::StepClient> steps_;
  std::unique_ptr<RawDoor> door_;  // from "raw-client" to host-0
  std::vector<int64_t> shard_numel_;  // of each dense shard
};

}  // namespace sy::fuzz
