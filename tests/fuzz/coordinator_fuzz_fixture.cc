// The coordinator fuzz tests' fixture (see coordinator_fuzz_fixture.h).
#include "tests/fuzz/coordinator_fuzz_fixture.h"

#include <unistd.h>

#include <filesystem>

#include <capnp/message.h>
#include <kj/string.h>

#include "common/transport/zmq_transport.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"

namespace sy::fuzz {

void CoordinatorFuzzTest::SetUp() {
  db_ = ::testing::TempDir() + "sy_fuzz_coordinator_" + std::to_string(::getpid());
  std::filesystem::remove_all(db_);
  coordinator::CoordinatorOptions options;
  options.db_path = db_;
  options.expected_hosts = 1;
  options.heartbeat_timeout = absl::Minutes(10);
  options.checkpoint_timeout = absl::Minutes(10);
  options.call_timeout = absl::Minutes(10);
  options.chunk_bytes = 1024;
  auto service = coordinator::CoordinatorService::Start(options, &registry_);
  ASSERT_TRUE(service.ok()) << service.status();
  service_ = *std::move(service);
  auto host = coordinator::testing::FakeHost::Start("host-0", service_->endpoint());
  ASSERT_TRUE(host.ok()) << host.status();
  host_ = *std::move(host);
  ASSERT_TRUE(host_->Register().ok());
  auto trainer = coordinator::testing::FakeTrainer::Start("trainer-0", service_->endpoint());
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  trainer_ = *std::move(trainer);
  ASSERT_TRUE(trainer_->Register().ok());
  auto admin = syctl::AdminClient::Connect(service_->endpoint());
  ASSERT_TRUE(admin.ok()) << admin.status();
  admin_ = *std::move(admin);

  transport::ZmqOptions zmq;
  zmq.node_id = "raw-client";
  auto raw = transport::ZmqTransport::Create(zmq);
  ASSERT_TRUE(raw.ok()) << raw.status();
  ASSERT_TRUE((*raw)->Connect("coordinator", service_->endpoint()).ok());
  door_ = std::make_unique<RawDoor>(*std::move(raw), "coordinator");

  // host-0 reached kFuzzStep (its fake never streams a step it did not report itself).
  capnp::MallocMessageBuilder heartbeat;
  auto body = cluster::InitBody<proto::coordinator::HeartbeatRequest>(heartbeat, proto::MessageKind::HEARTBEAT);
  heartbeat.getRoot<proto::Envelope>().setSender("host-0");
  heartbeat.getRoot<proto::Envelope>().setRequestId(1);
  body.setNodeId("host-0");
  body.setIncarnation(1);
  body.setStep(kFuzzStep);
  RawReply beat = door_->Call(transport::Message({}, transport::EncodeHeader(heartbeat), {}));
  ASSERT_TRUE(beat.replied && beat.status.ok()) << beat.status;
  auto now = Admin([](proto::admin::AdminRequest::Builder r) { r.setCheckpointNow(); });
  ASSERT_TRUE(now.ok()) << now.status();
  checkpoint_id_ = now->reply().getCheckpointId();
  ASSERT_NE(checkpoint_id_, 0u);
}

void CoordinatorFuzzTest::TearDown() {
  door_.reset();
  admin_.reset();
  if (service_) service_->Stop();
  trainer_.reset();
  host_.reset();
  service_.reset();
  std::filesystem::remove_all(db_);
}

absl::StatusOr<cluster::AdminReplyMessage> CoordinatorFuzzTest::Admin(
    const std::function<void(proto::admin::AdminRequest::Builder)>& fill) {
  return admin_->Call(fill, absl::Seconds(30));
}

std::string CoordinatorFuzzTest::CoordinatorState() {
  std::string state;
  auto read = [&](const char* what, const std::function<void(proto::admin::AdminRequest::Builder)>& fill) {
    auto reply = Admin(fill);
    if (!reply.ok()) {
      state += std::string(what) + ": " + reply.status().ToString() + "\n";
      return;
    }
    capnp::MallocMessageBuilder copy;
    copy.setRoot(reply->reply());
    auto root = copy.getRoot<proto::admin::AdminReply>();
    if (root.isHosts()) {
      for (auto host : root.getHosts()) host.setLastHeartbeatUnixMs(0);  // time, not state
    }
    state += std::string(what) + ": " + kj::str(root.asReader()).cStr() + "\n";
  };
  read("status", [](proto::admin::AdminRequest::Builder r) { r.setStatus(); });
  read("hosts", [](proto::admin::AdminRequest::Builder r) { r.setHosts(); });
  read("experts", [](proto::admin::AdminRequest::Builder r) { r.setExperts(); });
  read("checkpoints", [](proto::admin::AdminRequest::Builder r) { r.setCheckpointList(); });
  return state;
}

void CoordinatorFuzzTest::Settle() {
  std::string last = CoordinatorState();
  for (int i = 0; i < 50; ++i) {
    std::string now = CoordinatorState();
    if (now == last) return;
    last = std::move(now);
  }
}

}  // namespace sy::fuzz
