// The coordinator service tests' fixture (see service_fixture.h).
#include "tests/unit/coordinator/service_fixture.h"

#include <unistd.h>

#include <filesystem>

namespace sy::coordinator {

namespace fs = std::filesystem;

void ServiceTest::SetUp() {
  db_ = (fs::temp_directory_path() / ("sy_coord_svc_" + std::to_string(::getpid()) + "_" +
                                      ::testing::UnitTest::GetInstance()->current_test_info()->name())).string();
  fs::remove_all(db_);
  options_.db_path = db_;
  options_.expected_hosts = 2;
  options_.chunk_bytes = 1024;  // fake states are 2600 bytes: 3 chunks
  options_.heartbeat_timeout = absl::Seconds(30);
  options_.call_timeout = absl::Seconds(5);
}

void ServiceTest::TearDown() {
  h0_.reset();
  h1_.reset();
  trainer_.reset();
  service_.reset();
  fs::remove_all(db_);
}

void ServiceTest::StartService() {
  auto service = CoordinatorService::Start(options_, &registry_, storage_env_);
  ASSERT_TRUE(service.ok()) << service.status();
  service_ = *std::move(service);
  auto client = syctl::AdminClient::Connect(service_->endpoint());
  ASSERT_TRUE(client.ok()) << client.status();
  admin_ = *std::move(client);
}

std::unique_ptr<testing::FakeHost> ServiceTest::Host(const std::string& id, uint64_t incarnation) {
  auto host = testing::FakeHost::Start(id, service_->endpoint(), incarnation);
  EXPECT_TRUE(host.ok()) << host.status();
  return host.ok() ? *std::move(host) : nullptr;
}

void ServiceTest::RegisterTwoHostsAndATrainer() {
  h0_ = Host("host-0");
  h1_ = Host("host-1");
  auto trainer = testing::FakeTrainer::Start("trainer-0", service_->endpoint());
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  trainer_ = *std::move(trainer);
  ASSERT_TRUE(h0_->Register().ok() && h1_->Register().ok() && trainer_->Register().ok());
}

bool ServiceTest::ReachesStep(uint64_t step) {
  return testing::WaitFor([&] {
    std::optional<cluster::AdminReplyMessage> holder;
    return Status(holder).getStep() == step;
  });
}

absl::StatusOr<cluster::AdminReplyMessage> ServiceTest::Admin(
    const std::function<void(proto::admin::AdminRequest::Builder)>& fill) {
  return admin_->Call(fill, absl::Seconds(10));
}

proto::admin::ClusterStatus::Reader ServiceTest::Status(std::optional<cluster::AdminReplyMessage>& holder) {
  auto reply = Admin([](auto r) { r.setStatus(); });
  EXPECT_TRUE(reply.ok()) << reply.status();
  holder.emplace(*std::move(reply));
  return holder->reply().getStatus();
}

uint64_t ServiceTest::Epoch() {
  std::optional<cluster::AdminReplyMessage> holder;
  return Status(holder).getEpoch();
}

std::vector<uint64_t> ServiceTest::CheckpointSteps() {
  std::vector<uint64_t> out;
  auto list = Admin([](auto r) { r.setCheckpointList(); });
  if (!list.ok()) return out;
  for (auto m : list->reply().getCheckpoints()) out.push_back(m.getStep());
  return out;
}

uint64_t ServiceTest::LatestCheckpoint() {
  std::optional<cluster::AdminReplyMessage> holder;
  return Status(holder).getLatestCheckpoint();
}

double ServiceTest::Counter(const std::string& name, const metrics::Labels& labels) {
  return registry_.GetCounter(name, name == "sy_coordinator_moves_total" ? "Actor placement moves." : "Checkpoints ended.",
                              labels).value();
}

}  // namespace sy::coordinator
