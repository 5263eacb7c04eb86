// The fixture of the HostService tests: host-0 (and host-1 when asked) of a small
// Switch model serving on the in-process network, a trainer-side RpcNode and
// StepClient talking to it, and builders of the requests the tests send (buckets,
// placement tables, checkpoint restores, pulls, norm gathers).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <capnp/message.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/registry.h"
#include "common/transport/inproc_transport.h"
#include "common/transport/rpc.h"
#include "gpu/backend.h"
#include "gpu/model/config.h"
#include "proto/expert.capnp.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/placement_table.h"
#include "services/expert_host/host_service.h"
#include "services/trainer/step_client.h"
#include "tests/support/small_host_model.h"

namespace sy::expert_host::testing {

inline constexpr int kM = 2;

using ::sy::testing::SmallHostModel;

struct BucketSpec {
  uint32_t layer = 0, expert = 0;
  uint64_t step = 1, version = 0;
  uint32_t micro_batch = 0;
  bool training = true;
  uint32_t rows = 3, d_model = 8;
  std::vector<uint64_t> shape;  // default (rows, d_model)
  uint64_t epoch = 0;           // placement epoch in the envelope
  std::string host = "host-0";  // where it goes
};

// Names bucket `b` in a forward or backward request.
void SetBucket(const BucketSpec& b, proto::expert::BucketId::Builder bucket);

// A request sent without waiting; `Wait` returns its outcome.
struct Pending {
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  absl::Status status ABSL_GUARDED_BY(mu);
  absl::Status Wait();
  bool Done();
};

class HostServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(absl::Seconds(30)); }
  void TearDown() override;

  // A fresh host-0 (and network) of `model` with `step_timeout`, `limits` and device emulation
  // at `emulate_device_gflops` (0: off); the client sends every request twice with the same id
  // when duplicate_rate is 1.
  void Start(absl::Duration step_timeout, double duplicate_rate = 0, const gpu::ModelConfig& model = SmallHostModel(),
             const HostLimits& limits = {}, double emulate_device_gflops = 0);
  // host-`index` of config_ on the in-process network at inproc://host-`index`.
  void StartHost(int index, std::unique_ptr<HostService>* service, std::unique_ptr<transport::RpcNode>* server);
  // host-1 beside host-0 (the client reaches it as "host-1").
  void StartSecondHost();

  std::vector<float> Input(const BucketSpec& b) const;
  absl::StatusOr<transport::DecodedMessage> Forward(const BucketSpec& b);
  std::shared_ptr<Pending> ForwardAsync(const BucketSpec& b);
  absl::StatusOr<transport::DecodedMessage> Backward(const BucketSpec& b);
  // Commits every micro-batch of `step`, gathers the norms and applies.
  void CompleteStep(uint64_t step);
  std::shared_ptr<Pending> GatherAsync(uint64_t step);

  // Every actor of the model: the static placement over host-0 and host-1, with
  // `moved` actors on the other host instead.
  std::map<cluster::ActorKey, std::vector<std::string>> StaticTable(
      const std::vector<cluster::ActorKey>& moved = {}) const;
  static size_t NumShards();
  // A table at `epoch` placing `entries`, made by `live` moves after step
  // `last_source_step` when there are any (see cluster::PlacementTable::MarkLive).
  absl::Status SendPlacement(uint64_t epoch, std::map<cluster::ActorKey, std::vector<std::string>> entries,
                             const std::string& host = "host-0", const std::vector<cluster::Move>& live = {},
                             uint64_t last_source_step = 0);
  std::shared_ptr<Pending> SendPlacementAsync(uint64_t epoch,
                                              std::map<cluster::ActorKey, std::vector<std::string>> entries,
                                              const std::string& host = "host-0",
                                              const std::vector<cluster::Move>& live = {},
                                              uint64_t last_source_step = 0, bool initial = false);
  // The cluster's first placement (epoch 1, PlacementRequest.initial), as the coordinator pushes it.
  absl::Status SendFirstPlacement(std::map<cluster::ActorKey, std::vector<std::string>> entries);
  std::shared_ptr<Pending> CallAsync(capnp::MallocMessageBuilder& header, std::vector<transport::Frame> data = {},
                                     const std::string& host = "host-0");

  // A made-up checkpointed state of `key` (weights, m, v), different per actor and per `salt`.
  static std::string StateOf(const cluster::ActorKey& key, int salt);
  // Sends `state` as a checkpoint restore of `key` at `version`, in two chunks.
  absl::Status Restore(const cluster::ActorKey& key, uint64_t version, const std::string& state, uint64_t epoch,
                       const std::string& host = "host-0");
  // Restores every actor host-0 holds in the static placement at `version`.
  void RestoreAll(uint64_t version, int salt);

  absl::StatusOr<std::vector<float>> PullExpert(uint32_t layer, uint32_t expert, uint64_t version = 0);
  // Every actor's checksum on host-0, from a status query.
  std::vector<uint64_t> Checksums();

  std::unique_ptr<transport::InProcNetwork> net_;
  metrics::Registry registry_;
  std::unique_ptr<gpu::Backend> backend_;
  HostConfig config_;
  std::unique_ptr<HostService> service_, service1_;  // host-0, and host-1 once started
  std::unique_ptr<transport::RpcNode> server_, server1_, client_;
  std::unique_ptr<trainer::StepClient> steps_;

 private:
  // A forward request of bucket `b` in `header`; returns its frame.
  std::vector<transport::Frame> BuildForward(const BucketSpec& b, capnp::MallocMessageBuilder& header) const;
};

}  // namespace sy::expert_host::testing
