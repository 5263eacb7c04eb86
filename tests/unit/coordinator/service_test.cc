// The coordinator service over real ZeroMQ sockets with fake hosts and trainers:
// start-up failures, placement once the model's shape is known and the expected hosts
// registered, the shape learned from the first node and a node with another refused
// (also after a restart, from the saved placement), restart on the same database,
// fault forwarding, and bad input answered with clear errors.
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proto/admin.capnp.h"
#include "proto/checkpoint.capnp.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "tests/unit/coordinator/service_fixture.h"

namespace sy::coordinator {
namespace {

namespace fs = std::filesystem;
using testing::FakeHost;
using testing::FakeTrainer;
using testing::Heartbeater;
using testing::WaitFor;
using ::testing::HasSubstr;

TEST_F(ServiceTest, StartFailsCleanlyOnBadOptionsOrAnUnusableDatabase) {
  CoordinatorOptions no_db = options_;
  no_db.db_path = "";
  EXPECT_EQ(CoordinatorService::Start(no_db).status().code(), absl::StatusCode::kInvalidArgument);
  CoordinatorOptions bad_chunk = options_;
  bad_chunk.chunk_bytes = 6;
  EXPECT_EQ(CoordinatorService::Start(bad_chunk).status().code(), absl::StatusCode::kInvalidArgument);
  StartService();
  // The same database twice: the second is refused (RocksDB's lock), the first keeps serving.
  auto second = CoordinatorService::Start(options_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(db_));
  EXPECT_EQ(Epoch(), 0u);
  // A database path that is a regular file.
  const std::string file = db_ + "_file";
  std::ofstream(file) << "not a database";
  CoordinatorOptions on_file = options_;
  on_file.db_path = file;
  EXPECT_FALSE(CoordinatorService::Start(on_file).ok());
  fs::remove(file);
  // An endpoint that cannot be bound.
  CoordinatorOptions bad_listen = options_;
  bad_listen.db_path = db_ + "_other";
  bad_listen.listen = "tcp://256.0.0.1:1";
  EXPECT_FALSE(CoordinatorService::Start(bad_listen).ok());
  fs::remove_all(bad_listen.db_path);
}

TEST_F(ServiceTest, PlacementStartsOnceTheExpectedHostsRegistered) {
  StartService();
  auto h1 = Host("host-1");
  ASSERT_TRUE(h1->Register().ok());
  // Not ready with one of two hosts: a placement query is Unavailable (retry later).
  capnp::MallocMessageBuilder get;
  cluster::InitBody<proto::coordinator::PlacementRequest>(get, proto::MessageKind::PLACEMENT).setGet();
  EXPECT_EQ(h1->Call(get).status().code(), absl::StatusCode::kUnavailable);
  auto h0 = Host("host-0");
  ASSERT_TRUE(h0->Register().ok());
  ASSERT_TRUE(WaitFor([&] { return h0->table_epoch() == 1 && h1->table_epoch() == 1; }));
  // The static round-robin rule over the hosts in natural order: g % 2.
  EXPECT_EQ(h0->actors(), (std::vector<cluster::ActorKey>{cluster::ActorKey::Expert(0, 0), cluster::ActorKey::Expert(0, 2), cluster::ActorKey::Dense(0)}));
  EXPECT_EQ(h1->actors(), (std::vector<cluster::ActorKey>{cluster::ActorKey::Expert(0, 1), cluster::ActorKey::Expert(0, 3), cluster::ActorKey::Dense(1)}));
  // A query with the current epoch gets no table back; an old one gets it.
  capnp::MallocMessageBuilder current;
  auto req = cluster::InitBody<proto::coordinator::PlacementRequest>(current, proto::MessageKind::PLACEMENT);
  req.setGet();
  req.setKnownEpoch(1);
  auto reply = h0->Call(current);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_FALSE(reply->Body<proto::coordinator::PlacementReply>()->hasTable());
  auto full = h0->Call(get);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->Body<proto::coordinator::PlacementReply>()->getTable().getEntries().size(), 6u);
}

TEST_F(ServiceTest, TheModelShapeIsLearnedFromTheFirstNodeAndANodeWithAnotherIsRefused) {
  StartService();
  // Before any node registered nothing is known: no experts to list.
  auto none = Admin([](auto r) { r.setExperts(); });
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->reply().getExperts().size(), 0u);
  // The first node to register is a trainer: its model's shape (1 x 4 and 2 dense shards) is the cluster's.
  auto trainer = FakeTrainer::Start("trainer-0", service_->endpoint());
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  ASSERT_TRUE((*trainer)->Register().ok());
  // A host whose model has another shape is refused, naming both, and does not become a member.
  auto other = FakeHost::Start("host-9", service_->endpoint(), 1, cluster::ModelShape{2, 8, 4});
  ASSERT_TRUE(other.ok()) << other.status();
  const absl::Status refused = (*other)->Register();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("host-9's model has 2 Switch layers x 8 experts and 4 dense shards"));
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("(learned from trainer-0) has 1 Switch layer x 4 experts and 2 dense shards"));
  // So is a register that carries no shape at all.
  capnp::MallocMessageBuilder shapeless;
  auto reg = cluster::InitBody<proto::coordinator::RegisterRequest>(shapeless, proto::MessageKind::REGISTER);
  reg.setNodeId("host-9");
  reg.setRole(proto::coordinator::Role::EXPERT_HOST);
  reg.setEndpoint((*other)->endpoint());
  EXPECT_EQ((*other)->Call(shapeless).status().code(), absl::StatusCode::kInvalidArgument);
  std::optional<cluster::AdminReplyMessage> holder;
  EXPECT_EQ(Status(holder).getHostsTotal(), 0u);
  // Hosts of the learned shape get every actor of it placed.
  auto h0 = Host("host-0"), h1 = Host("host-1");
  ASSERT_TRUE(h0->Register().ok() && h1->Register().ok());
  ASSERT_TRUE(WaitFor([&] { return h0->table_epoch() == 1 && h1->table_epoch() == 1; }));
  EXPECT_EQ(h0->actors().size() + h1->actors().size(), 6u);
  auto experts = Admin([](auto r) { r.setExperts(); });
  ASSERT_TRUE(experts.ok()) << experts.status();
  EXPECT_EQ(experts->reply().getExperts().size(), 4u);
}

TEST_F(ServiceTest, AfterARestartTheModelShapeComesFromTheSavedPlacement) {
  StartService();
  auto h0 = Host("host-0"), h1 = Host("host-1");
  ASSERT_TRUE(h0->Register().ok() && h1->Register().ok());
  ASSERT_TRUE(WaitFor([&] { return h0->table_epoch() == 1 && h1->table_epoch() == 1; }));
  h0.reset();
  h1.reset();
  service_.reset();
  StartService();  // the same database
  auto other = FakeTrainer::Start("trainer-0", service_->endpoint(), cluster::ModelShape{2, 8, 4});
  ASSERT_TRUE(other.ok()) << other.status();
  const absl::Status refused = (*other)->Register();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("(learned from the saved placement) has 1 Switch layer x 4"));
  auto trainer = FakeTrainer::Start("trainer-1", service_->endpoint());
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  EXPECT_TRUE((*trainer)->Register().ok());
}

TEST_F(ServiceTest, RestartRebuildsCatalogAndPlacementFromTheDatabase) {
  // Long enough for the hosts to re-register after the restart on a slow (sanitizer) build.
  options_.heartbeat_timeout = absl::Seconds(10);
  StartService();
  auto h0 = Host("host-0"), h1 = Host("host-1");
  ASSERT_TRUE(h0->Register().ok() && h1->Register().ok());
  ASSERT_TRUE(h0->Heartbeat(3).ok() && h1->Heartbeat(3).ok());
  ASSERT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
  ASSERT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
  const uint64_t epoch = Epoch();
  const auto h0_actors = h0->actors();
  // The coordinator restarts on the same database and the same port.
  const std::string endpoint = service_->endpoint();
  service_.reset();
  options_.listen = endpoint;
  StartService();
  EXPECT_EQ(LatestCheckpoint(), 1u);
  EXPECT_EQ(Epoch(), epoch);
  // Heartbeats are answered "register again"; hosts that re-register with their actors
  // cause no recovery.
  Heartbeater beats({h0.get(), h1.get()}, {});
  beats.step = 4;
  ASSERT_TRUE(WaitFor([&] {
    std::optional<cluster::AdminReplyMessage> holder;
    auto s = Status(holder);
    return s.getHostsAlive() == 2 && s.getStep() == 4;
  }));
  std::optional<cluster::AdminReplyMessage> holder;
  EXPECT_EQ(Status(holder).getRecoveries(), 0u);
  EXPECT_EQ(h0->actors(), h0_actors);
  auto list = Admin([](auto r) { r.setCheckpointList(); });
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->reply().getCheckpoints().size(), 1u);
}

TEST_F(ServiceTest, FaultsAreSetOnTheCoordinatorOrForwardedToANode) {
  StartService();
  auto h0 = Host("host-0"), h1 = Host("host-1");
  ASSERT_TRUE(h0->Register().ok() && h1->Register().ok());
  auto forwarded = Admin([](auto r) {
    auto f = r.initFaults();
    f.setNodeId("host-1");
    f.setSpec("drop=0.2,seed=3");
  });
  ASSERT_TRUE(forwarded.ok()) << forwarded.status();
  EXPECT_EQ(h1->fault_specs(), std::vector<std::string>{"drop=0.2,seed=3"});
  EXPECT_TRUE(Admin([](auto r) { r.initFaults().setSpec("dup=0.5,seed=1"); }).ok());
  EXPECT_TRUE(Admin([](auto r) { r.initFaults().setSpec(""); }).ok());
  EXPECT_EQ(Admin([](auto r) { r.initFaults().setSpec("drop=7"); }).status().code(), absl::StatusCode::kInvalidArgument);
  auto unknown = Admin([](auto r) {
    auto f = r.initFaults();
    f.setNodeId("nobody");
    f.setSpec("drop=0.1");
  });
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ServiceTest, BadInputGetsAClearErrorAndChangesNothing) {
  StartService();
  auto h0 = Host("host-0");
  // A register claiming another node's id.
  capnp::MallocMessageBuilder spoof;
  auto reg = cluster::InitBody<proto::coordinator::RegisterRequest>(spoof, proto::MessageKind::REGISTER);
  reg.setNodeId("host-7");
  reg.setRole(proto::coordinator::Role::EXPERT_HOST);
  reg.setEndpoint("tcp://127.0.0.1:1");
  auto refused = h0->Call(spoof);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("host-7"));
  // A host without an endpoint.
  capnp::MallocMessageBuilder no_endpoint;
  auto reg2 = cluster::InitBody<proto::coordinator::RegisterRequest>(no_endpoint, proto::MessageKind::REGISTER);
  reg2.setNodeId("host-0");
  reg2.setRole(proto::coordinator::Role::EXPERT_HOST);
  EXPECT_EQ(h0->Call(no_endpoint).status().code(), absl::StatusCode::kInvalidArgument);
  // A load report for an expert the model does not have.
  capnp::MallocMessageBuilder load;
  auto report = cluster::InitBody<proto::coordinator::LoadReportRequest>(load, proto::MessageKind::LOAD_REPORT);
  report.setTrainer("host-0");
  report.initLoads(1)[0].initExpert().setExpert(99);
  EXPECT_EQ(h0->Call(load).status().code(), absl::StatusCode::kInvalidArgument);
  // A chunk for a checkpoint nobody is taking.
  capnp::MallocMessageBuilder chunk;
  auto c = cluster::InitBody<proto::checkpoint::ChunkRequest>(chunk, proto::MessageKind::CHECKPOINT_CHUNK);
  c.setCheckpointId(5);
  cluster::ActorKey::Expert(0, 0).ToProto(c.initActor());
  auto frames = cluster::AttachState(chunk, std::string(8, 'x'));
  EXPECT_EQ(h0->Call(chunk, frames).status().code(), absl::StatusCode::kFailedPrecondition);
  // A placement update from a node: only the coordinator publishes.
  capnp::MallocMessageBuilder update;
  cluster::InitBody<proto::coordinator::PlacementRequest>(update, proto::MessageKind::PLACEMENT).initUpdate();
  EXPECT_EQ(h0->Call(update).status().code(), absl::StatusCode::kInvalidArgument);
  // A kind the coordinator does not serve.
  capnp::MallocMessageBuilder commit;
  commit.initRoot<proto::Envelope>().setKind(proto::MessageKind::STEP_COMMIT);
  EXPECT_EQ(h0->Call(commit).status().code(), absl::StatusCode::kUnimplemented);
  std::optional<cluster::AdminReplyMessage> holder;
  auto status = Status(holder);
  EXPECT_EQ(status.getHostsTotal(), 0u);
  EXPECT_EQ(status.getEpoch(), 0u);
}

}  // namespace
}  // namespace sy::coordinator
