// ServiceTest: the fixture of the coordinator service tests (service_test,
// checkpoint_service_test, recovery_service_test, moves_service_test). Each test gets
// a fresh database, options for a 2-host cluster of the fake nodes' model, a metrics
// registry, and helpers to start the service, register fake hosts and a trainer, and
// read the admin status over a real syctl AdminClient.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/metrics/registry.h"
#include "proto/admin.capnp.h"
#include "services/cluster/admin_reply.h"
#include "services/coordinator/coordinator_service.h"
#include "services/syctl/admin_client.h"
#include "tests/unit/coordinator/fake_node.h"

namespace sy::coordinator {

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts the service with options_ and connects admin_.
  void StartService();
  // A fake host of the fake nodes' model, started against the service (null on failure).
  std::unique_ptr<testing::FakeHost> Host(const std::string& id, uint64_t incarnation = 1);
  // Registers host-0, host-1 (h0_, h1_) and trainer-0 (trainer_) with the service.
  void RegisterTwoHostsAndATrainer();
  // Waits until the service's status shows `step` as the cluster's step.
  bool ReachesStep(uint64_t step);

  absl::StatusOr<cluster::AdminReplyMessage> Admin(const std::function<void(proto::admin::AdminRequest::Builder)>& fill);
  // The admin status; `holder` keeps the reply it reads from alive.
  proto::admin::ClusterStatus::Reader Status(std::optional<cluster::AdminReplyMessage>& holder);
  uint64_t Epoch();
  // Steps of the committed checkpoints, as `checkpoint list` shows them (empty on error).
  std::vector<uint64_t> CheckpointSteps();
  uint64_t LatestCheckpoint();
  double Counter(const std::string& name, const metrics::Labels& labels);

  std::string db_;
  CoordinatorOptions options_;
  rocksdb::Env* storage_env_ = nullptr;  // StartService's database environment (null: the default)
  metrics::Registry registry_;  // outlives the service (declared first)
  std::unique_ptr<CoordinatorService> service_;
  std::unique_ptr<syctl::AdminClient> admin_;
  std::unique_ptr<testing::FakeHost> h0_, h1_;
  std::unique_ptr<testing::FakeTrainer> trainer_;
};

}  // namespace sy::coordinator
