// The coordinator service over real ZeroMQ sockets with fake hosts and trainers:
// placement once the expected hosts registered, checkpoint now (hosts stream
// chunks) and restore, host failure -> re-placement + restore + trainer rollback,
// join/drain/rebalance with migration requests, automatic rebalancing at committed
// checkpoints (rate-limited) and the per-step host load series, restart on the same database, fault
// forwarding, and bad input answered with clear errors.
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "proto/admin.capnp.h"
#include "proto/checkpoint.capnp.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "services/coordinator/coordinator_service.h"
#include "services/syctl/admin_client.h"
#include "tests/unit/coordinator/fake_node.h"

namespace sy::coordinator {
namespace {

namespace fs = std::filesystem;
using testing::FakeHost;
using testing::FakeState;
using testing::FakeTrainer;
using testing::Heartbeater;
using testing::WaitFor;
using ::testing::HasSubstr;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = (fs::temp_directory_path() / ("sy_coord_svc_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name())).string();
    fs::remove_all(db_);
    options_.db_path = db_;
    options_.shape = {1, 4, 2};  // 6 actors
    options_.expected_hosts = 2;
    options_.chunk_bytes = 1024;  // fake states are 2600 bytes: 3 chunks
    options_.heartbeat_timeout = absl::Seconds(30);
    options_.call_timeout = absl::Seconds(5);
  }
  void TearDown() override {
    h0_.reset();
    h1_.reset();
    trainer_.reset();
    service_.reset();
    fs::remove_all(db_);
  }

  void StartService() {
    auto service = CoordinatorService::Start(options_, &registry_);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
    auto client = syctl::AdminClient::Connect(service_->endpoint());
    ASSERT_TRUE(client.ok()) << client.status();
    admin_ = *std::move(client);
  }

  std::unique_ptr<FakeHost> Host(const std::string& id, uint64_t incarnation = 1) {
    auto host = FakeHost::Start(id, service_->endpoint(), incarnation);
    EXPECT_TRUE(host.ok()) << host.status();
    return host.ok() ? *std::move(host) : nullptr;
  }

  // Registers host-0, host-1 (h0_, h1_) and trainer-0 (trainer_) with the service.
  void RegisterTwoHostsAndATrainer() {
    h0_ = Host("host-0");
    h1_ = Host("host-1");
    auto trainer = FakeTrainer::Start("trainer-0", service_->endpoint());
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    trainer_ = *std::move(trainer);
    ASSERT_TRUE(h0_->Register().ok() && h1_->Register().ok() && trainer_->Register().ok());
  }
  // Waits until the service's status shows `step` as the cluster's step.
  bool ReachesStep(uint64_t step) {
    return WaitFor([&] {
      std::optional<cluster::AdminReplyMessage> holder;
      return Status(holder).getStep() == step;
    });
  }

  absl::StatusOr<cluster::AdminReplyMessage> Admin(const std::function<void(proto::admin::AdminRequest::Builder)>& fill) {
    return admin_->Call(fill, absl::Seconds(10));
  }
  proto::admin::ClusterStatus::Reader Status(std::optional<cluster::AdminReplyMessage>& holder) {
    auto reply = Admin([](auto r) { r.setStatus(); });
    EXPECT_TRUE(reply.ok()) << reply.status();
    holder.emplace(*std::move(reply));
    return holder->reply().getStatus();
  }
  uint64_t Epoch() {
    std::optional<cluster::AdminReplyMessage> holder;
    return Status(holder).getEpoch();
  }
  // Steps of the committed checkpoints, as `checkpoint list` shows them (empty on error).
  std::vector<uint64_t> CheckpointSteps() {
    std::vector<uint64_t> out;
    auto list = Admin([](auto r) { r.setCheckpointList(); });
    if (!list.ok()) return out;
    for (auto m : list->reply().getCheckpoints()) out.push_back(m.getStep());
    return out;
  }
  uint64_t LatestCheckpoint() {
    std::optional<cluster::AdminReplyMessage> holder;
    return Status(holder).getLatestCheckpoint();
  }

  double Counter(const std::string& name, const metrics::Labels& labels) {
    return registry_.GetCounter(name, name == "sy_coordinator_moves_total" ? "Actor placement moves." : "Checkpoints ended.",
                                labels).value();
  }

  std::string db_;
  CoordinatorOptions options_;
  metrics::Registry registry_;  // outlives the service (declared first)
  std::unique_ptr<CoordinatorService> service_;
  std::unique_ptr<syctl::AdminClient> admin_;
  std::unique_ptr<FakeHost> h0_, h1_;
  std::unique_ptr<FakeTrainer> trainer_;
};

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

TEST_F(ServiceTest, CheckpointNowStoresEveryActorAndRestoreStreamsItBack) {
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  ASSERT_TRUE(h0_->Heartbeat(5).ok() && h1_->Heartbeat(5).ok());

  auto now = Admin([](auto r) { r.setCheckpointNow(); });
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->reply().getCheckpointId(), 1u);
  ASSERT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
  EXPECT_EQ(h0_->checkpoint_chunks_sent() + h1_->checkpoint_chunks_sent(), 6 * 3);
  EXPECT_EQ(Counter("sy_coordinator_checkpoints_total", {{"result", "committed"}}), 1);
  auto list = Admin([](auto r) { r.setCheckpointList(); });
  ASSERT_TRUE(list.ok());
  auto manifests = list->reply().getCheckpoints();
  ASSERT_EQ(manifests.size(), 1u);
  EXPECT_EQ(manifests[0].getStep(), 5u);
  ASSERT_EQ(manifests[0].getActors().size(), 6u);
  EXPECT_EQ(manifests[0].getActors()[0].getChunkCount(), 3u);
  EXPECT_EQ(manifests[0].getActors()[0].getTotalBytes(), FakeState(cluster::ActorKey::Expert(0, 0), 5).size());

  const uint64_t epoch = Epoch();
  auto restore = Admin([](auto r) { r.setCheckpointRestore(1); });
  ASSERT_TRUE(restore.ok()) << restore.status();
  EXPECT_EQ(restore->reply().getCheckpointId(), 1u);
  EXPECT_GT(Epoch(), epoch);  // requests from before the restore are stale
  for (FakeHost* h : {h0_.get(), h1_.get()}) {
    auto installed = h->installed();
    ASSERT_EQ(installed.size(), 3u) << h->id();
    for (const auto& [actor, state] : installed) EXPECT_EQ(state, FakeState(actor, 5)) << actor.ToString();
  }
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 5u);
  EXPECT_EQ(trainer_->rollbacks()[0].checkpoint_id, 1u);
  // Unknown checkpoint: NotFound, nothing changes.
  auto missing = Admin([](auto r) { r.setCheckpointRestore(9); });
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ServiceTest, CheckpointThatCannotCompleteIsAbandonedAndThePreviousStaysLatest) {
  options_.checkpoint_timeout = absl::Milliseconds(800);
  StartService();
  auto h0 = Host("host-0"), h1 = Host("host-1");
  ASSERT_TRUE(h0->Register().ok() && h1->Register().ok());
  ASSERT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
  ASSERT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
  h1.reset();  // host-1 vanishes without a word: its actors' state never arrives
  auto second = Admin([](auto r) { r.setCheckpointNow(); });
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->reply().getCheckpointId(), 2u);
  ASSERT_TRUE(WaitFor([&] {
    std::optional<cluster::AdminReplyMessage> holder;
    return Status(holder).getCheckpointInProgress() == 0;
  }));
  EXPECT_EQ(LatestCheckpoint(), 1u);
  auto list = Admin([](auto r) { r.setCheckpointList(); });
  ASSERT_TRUE(list.ok());
  auto manifests = list->reply().getCheckpoints();
  ASSERT_EQ(manifests.size(), 1u);
  EXPECT_EQ(manifests[0].getCheckpointId(), 1u);
}

TEST_F(ServiceTest, AutomaticCheckpointsAtEveryNthStepWithRetention) {
  options_.checkpoint_every = 5;
  options_.retain = 2;
  StartService();
  auto h0 = Host("host-0"), h1 = Host("host-1");
  ASSERT_TRUE(h0->Register().ok() && h1->Register().ok());
  Heartbeater beats({h0.get(), h1.get()}, {});
  // The hosts are asked for the next boundary ahead (step 5) and stream when they reach it;
  // each commit asks for the next boundary right away.
  beats.step = 3;
  ASSERT_TRUE(WaitFor([&] { return !h0->stream_outs().empty(); }));
  for (const auto& s : h0->stream_outs()) EXPECT_EQ(s.at_step, 5u);
  EXPECT_TRUE(CheckpointSteps().empty()) << "nothing is committed before the hosts reach step 5";
  beats.step = 6;
  ASSERT_TRUE(WaitFor([&] { return CheckpointSteps() == std::vector<uint64_t>{5}; }));
  beats.step = 10;
  ASSERT_TRUE(WaitFor([&] { return CheckpointSteps() == (std::vector<uint64_t>{5, 10}); }));
  beats.step = 15;
  ASSERT_TRUE(WaitFor([&] { return CheckpointSteps() == (std::vector<uint64_t>{10, 15}); }));  // retain 2
  EXPECT_EQ(LatestCheckpoint(), 3u);
  for (const auto& s : h0->stream_outs()) EXPECT_EQ(s.at_step % 5, 0u);
}

TEST_F(ServiceTest, HostsThatRanAheadStillGetEveryCheckpointTheyKeep) {
  options_.checkpoint_every = 5;
  options_.retain = 20;
  StartService();
  auto h0 = Host("host-0"), h1 = Host("host-1");
  ASSERT_TRUE(h0->Register().ok() && h1->Register().ok());
  // The first heartbeat the coordinator sees is already at step 17: 5, 10 and 15 are
  // all still kept by the hosts, and all are taken, oldest first.
  Heartbeater beats({h0.get(), h1.get()}, {});
  beats.step = 17;
  ASSERT_TRUE(WaitFor([&] { return CheckpointSteps() == (std::vector<uint64_t>{5, 10, 15}); })) << CheckpointSteps().size();
  std::optional<cluster::AdminReplyMessage> holder;
  EXPECT_EQ(Status(holder).getLatestCheckpointStep(), 15u);
  // Step 20 was asked for ahead, at 17. Then far ahead (step 52): the hosts keep only
  // their last kHostSnapshotsKept multiples of 5, so after 20 the coordinator goes on
  // from the oldest of those (35), not from 25.
  beats.step = 52;
  ASSERT_TRUE(WaitFor([&] { return CheckpointSteps().size() == 8; })) << CheckpointSteps().size();
  EXPECT_EQ(CheckpointSteps(), (std::vector<uint64_t>{5, 10, 15, 20, 35, 40, 45, 50}));
}

TEST_F(ServiceTest, NoCheckpointWaitsForAStepAfterEveryTrainerFinished) {
  options_.checkpoint_every = 5;
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  Heartbeater beats({h0_.get(), h1_.get()}, {});
  beats.step = 12;
  auto in_progress_step = [&] {
    std::optional<cluster::AdminReplyMessage> holder;
    return Status(holder).getCheckpointInProgressStep();
  };
  // 5 and 10 are taken; 15 is asked for ahead of the hosts.
  ASSERT_TRUE(WaitFor([&] { return in_progress_step() == 15; }));
  EXPECT_EQ(CheckpointSteps(), (std::vector<uint64_t>{5, 10}));
  // The only trainer says it finished at step 12: step 15 will never come.
  ASSERT_TRUE(trainer_->Heartbeat(12, /*finished=*/true).ok());
  ASSERT_TRUE(WaitFor([&] { return in_progress_step() == 0; }));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(in_progress_step(), 0u);  // and none after it
  EXPECT_EQ(CheckpointSteps(), (std::vector<uint64_t>{5, 10}));
}

TEST_F(ServiceTest, HostFailureReplacesRestoresAndRollsTrainersBack) {
  options_.heartbeat_timeout = absl::Milliseconds(400);
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  {
    Heartbeater all({h0_.get(), h1_.get()}, {trainer_.get()});
    all.step = 10;
    ASSERT_TRUE(ReachesStep(10));
    ASSERT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
    ASSERT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
  }
  // host-1 goes silent; host-0 and the trainer keep beating.
  Heartbeater survivors({h0_.get()}, {trainer_.get()});
  survivors.step = 13;
  ASSERT_TRUE(WaitFor([&] { return h0_->actors().size() == 6; }));
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 10u);
  auto installed = h0_->installed();
  ASSERT_EQ(installed.size(), 6u);  // every actor restored to the checkpoint, survivors' too
  for (const auto& [actor, state] : installed) EXPECT_EQ(state, FakeState(actor, 10));
  std::optional<cluster::AdminReplyMessage> holder;
  auto status = Status(holder);
  EXPECT_EQ(status.getRecoveries(), 1u);
  EXPECT_EQ(status.getHostsAlive(), 1u);
  EXPECT_EQ(std::string(status.getPhase().cStr()), "training");
  EXPECT_EQ(trainer_->rollbacks()[0].epoch, h0_->table_epoch());
}

TEST_F(ServiceTest, AHostLostBeforeAnyCheckpointStopsTheTrainersWithTheReason) {
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  // host-1 goes (as `syctl remove-host` says): its actors have no checkpoint to come back from.
  ASSERT_TRUE(Admin([](auto r) { r.setRemoveHost("host-1"); }).ok());
  ASSERT_TRUE(WaitFor([&] { return !trainer_->stops().empty(); }));
  EXPECT_THAT(trainer_->stops()[0], HasSubstr("recovery impossible"));
  EXPECT_TRUE(trainer_->rollbacks().empty());
  std::optional<cluster::AdminReplyMessage> holder;
  EXPECT_THAT(std::string(Status(holder).getPhase().cStr()), HasSubstr("degraded"));
}

TEST_F(ServiceTest, JoinDrainAndRebalanceMoveActorsThroughTheLatestCheckpoint) {
  options_.auto_rebalance = false;  // the admin rebalance moves them here
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  // host-0 holds E0 and E2: make them hot.
  ASSERT_TRUE(trainer_->ReportLoad(1, {{cluster::ActorKey::Expert(0, 0), 300, 0}, {cluster::ActorKey::Expert(0, 1), 50, 0},
                                         {cluster::ActorKey::Expert(0, 2), 200, 0}, {cluster::ActorKey::Expert(0, 3), 50, 0}})
                  .ok());
  const uint64_t epoch = Epoch();
  auto dry = Admin([](auto r) { r.initRebalance().setDryRun(true); });
  ASSERT_TRUE(dry.ok()) << dry.status();
  auto plan = dry->reply().getRebalance();
  EXPECT_FALSE(plan.getApplied());
  ASSERT_GT(plan.getMoves().size(), 0u);
  EXPECT_GT(plan.getMaxOverMeanBefore(), 1.25);
  EXPECT_LE(plan.getMaxOverMeanAfter(), 1.25);
  EXPECT_EQ(Epoch(), epoch);  // a dry run changes nothing
  // Moved state travels through a checkpoint: without one, moves are refused and nothing changes.
  auto refused = Admin([](auto r) { r.initRebalance(); });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("needs a committed checkpoint"));
  EXPECT_EQ(Admin([](auto r) { r.setDrain("host-0"); }).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Epoch(), epoch);

  Heartbeater beats({h0_.get(), h1_.get()}, {trainer_.get()});
  beats.step = 8;
  ASSERT_TRUE(ReachesStep(8));
  ASSERT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
  ASSERT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
  auto real = Admin([](auto r) { r.initRebalance(); });
  ASSERT_TRUE(real.ok()) << real.status();
  EXPECT_TRUE(real->reply().getRebalance().getApplied());
  EXPECT_GT(Epoch(), epoch);
  // Every actor is restored from checkpoint 1 on its (new) host and the trainer replays from step 8.
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 8u);
  for (FakeHost* h : {h0_.get(), h1_.get()}) {
    for (const cluster::ActorKey& actor : h->actors()) {
      ASSERT_EQ(h->installed().count(actor), 1u) << h->id() << " " << actor.ToString();
      EXPECT_EQ(h->installed().at(actor), FakeState(actor, 8));
    }
  }
  EXPECT_EQ(Counter("sy_coordinator_moves_total", {{"kind", "migrate"}}) +
                Counter("sy_coordinator_moves_total", {{"kind", "replicate"}}),
            static_cast<double>(plan.getMoves().size()));

  // host-2 joins: actors move to it and it gets their checkpointed state.
  auto h2 = Host("host-2");
  ASSERT_TRUE(h2->Register().ok());
  ASSERT_TRUE(WaitFor([&] { return h2->actors().size() == 2 && h2->installed().size() == 2; }));
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 2; }));

  // Drain host-0: it keeps nothing; the others hold and got every actor it had.
  ASSERT_TRUE(Admin([](auto r) { r.setDrain("host-0"); }).ok());
  ASSERT_TRUE(WaitFor([&] { return h0_->actors().empty() && trainer_->rollbacks().size() == 3; }));
  EXPECT_EQ(h1_->actors().size() + h2->actors().size(), 6u);
  EXPECT_EQ(Admin([](auto r) { r.setDrain("host-9"); }).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ServiceTest, HostJoiningBeforeAnyCheckpointGetsActorsAtTheFirstOne) {
  options_.auto_rebalance = false;
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  // No checkpoint yet: host-2 is registered but nothing can move to it.
  auto h2 = Host("host-2");
  ASSERT_TRUE(h2->Register().ok());
  const uint64_t epoch = Epoch();
  Heartbeater beats({h0_.get(), h1_.get(), h2.get()}, {trainer_.get()});
  beats.step = 6;
  ASSERT_TRUE(ReachesStep(6));
  EXPECT_TRUE(h2->actors().empty());
  EXPECT_EQ(Epoch(), epoch);
  EXPECT_TRUE(trainer_->rollbacks().empty());
  // The first committed checkpoint carries its share to it; the trainer replays from there.
  ASSERT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
  ASSERT_TRUE(WaitFor([&] { return h2->actors().size() == 2 && h2->installed().size() == 2; }));
  for (const cluster::ActorKey& actor : h2->actors()) EXPECT_EQ(h2->installed().at(actor), FakeState(actor, 6));
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 6u);
  EXPECT_GT(Epoch(), epoch);
}

struct SeriesStep {
  uint64_t epoch = 0;
  std::map<std::string, double> tokens;
  double max_over_mean = 0;
};

TEST_F(ServiceTest, AutomaticRebalanceMigratesHotExpertsAtCommittedCheckpointsAtMostOncePerPeriod) {
  options_.checkpoint_every = 5;
  options_.rebalance_every_steps = 10;
  options_.retain = 10;
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  auto status = [&](auto get) {
    std::optional<cluster::AdminReplyMessage> holder;
    return get(Status(holder));
  };
  auto migrations = [&] { return status([](auto s) { return s.getMigrations(); }); };
  auto checkpoint_step = [&] { return status([](auto s) { return s.getLatestCheckpointStep(); }); };
  auto series = [&] {
    std::map<uint64_t, SeriesStep> out;
    auto reply = Admin([](auto r) { r.setHostLoadSeries(); });
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return out;
    for (auto s : reply->reply().getHostLoadSeries()) {
      SeriesStep& step = out[s.getStep()];
      step.epoch = s.getEpoch();
      for (unsigned i = 0; i < s.getHosts().size(); ++i) step.tokens[s.getHosts()[i].cStr()] = s.getTokens()[i];
      step.max_over_mean = s.getMaxOverMean();
    }
    return out;
  };
  // host-0 holds E0 and E2 (500 tokens), host-1 E1 and E3 (100): max/mean 1.67.
  ASSERT_TRUE(trainer_->ReportLoad(1, {{cluster::ActorKey::Expert(0, 0), 300, 0}, {cluster::ActorKey::Expert(0, 1), 50, 0},
                                         {cluster::ActorKey::Expert(0, 2), 200, 0}, {cluster::ActorKey::Expert(0, 3), 50, 0}})
                  .ok());
  Heartbeater beats({h0_.get(), h1_.get()}, {trainer_.get()});
  beats.step = 6;
  // Checkpoint 5 commits: the plan moves E2 to host-1 (300 / 300), through that checkpoint.
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->rollbacks()[0].step, 5u);
  EXPECT_EQ(migrations(), 1u);
  EXPECT_EQ(Counter("sy_coordinator_moves_total", {{"kind", "replicate"}}), 0.0);
  ASSERT_TRUE(WaitFor([&] { return h1_->actors().size() == 4 && h1_->installed().count(cluster::ActorKey::Expert(0, 2)) == 1; }));
  EXPECT_EQ(h1_->installed().at(cluster::ActorKey::Expert(0, 2)), FakeState(cluster::ActorKey::Expert(0, 2), 5));

  // The load turns onto host-1 (E1 and E2 hot): checkpoint 10 is within 10 steps of the last
  // rebalance (step 5), so nothing moves; checkpoint 15 rebalances again.
  for (uint64_t step = 6; step <= 9; ++step) {
    ASSERT_TRUE(trainer_->ReportLoad(step, {{cluster::ActorKey::Expert(0, 0), 50, 0}, {cluster::ActorKey::Expert(0, 1), 400, 0},
                                              {cluster::ActorKey::Expert(0, 2), 300, 0}, {cluster::ActorKey::Expert(0, 3), 50, 0}})
                    .ok());
  }
  beats.step = 10;
  ASSERT_TRUE(WaitFor([&] { return checkpoint_step() == 10; }));
  EXPECT_EQ(migrations(), 1u);
  beats.step = 15;
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 2; }));
  EXPECT_EQ(trainer_->rollbacks()[1].step, 15u);
  EXPECT_GT(migrations(), 1u);

  // Each step's host load was counted with the table of its time.
  const auto by_step = series();
  ASSERT_EQ(by_step.count(1), 1u);
  ASSERT_EQ(by_step.count(6), 1u);
  EXPECT_EQ(by_step.at(1).tokens, (std::map<std::string, double>{{"host-0", 500}, {"host-1", 100}}));
  EXPECT_NEAR(by_step.at(1).max_over_mean, 500.0 / 300.0, 1e-9);
  EXPECT_EQ(by_step.at(6).tokens, (std::map<std::string, double>{{"host-0", 50}, {"host-1", 750}}));
  EXPECT_GT(by_step.at(6).epoch, by_step.at(1).epoch);
}

TEST_F(ServiceTest, TrainerGetsNoNewTableUntilItAnsweredItsRollback) {
  options_.auto_rebalance = false;
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  EXPECT_EQ(trainer_->PlacementTableEpoch().value(), Epoch());
  Heartbeater beats({h0_.get(), h1_.get()}, {trainer_.get()});
  beats.step = 4;
  ASSERT_TRUE(ReachesStep(4));
  ASSERT_TRUE(Admin([](auto r) { r.setCheckpointNow(); }).ok());
  ASSERT_TRUE(WaitFor([&] { return LatestCheckpoint() == 1; }));
  // A restore (as every move and recovery does): the trainer is still busy with its rollback order.
  trainer_->HoldRollbackReplies();
  ASSERT_TRUE(Admin([](auto r) { r.setCheckpointRestore(1); }).ok());
  ASSERT_TRUE(WaitFor([&] { return trainer_->rollbacks().size() == 1; }));
  EXPECT_EQ(trainer_->PlacementTableEpoch().value(), 0u) << "no table before the rollback was answered";
  trainer_->ReleaseRollbackReplies();
  ASSERT_TRUE(WaitFor([&] { return trainer_->PlacementTableEpoch().value() == Epoch(); }));
  EXPECT_EQ(trainer_->rollbacks()[0].epoch, Epoch());
}

// E0 alone outweighs everything else (1000 of 1100 tokens): no migration helps, only a
// replica splits it. Off, or with max_replicas 1, nothing moves; with the default
// (2 replicas) E0 gains a replica on host-1 at checkpoint 5.
TEST_F(ServiceTest, AutomaticRebalanceReplicatesAnExpertTooHotForAnyHostUnlessOffOrLimited) {
  enum class Setting { kOff, kMigrationsOnly, kDefault };
  for (Setting setting : {Setting::kOff, Setting::kMigrationsOnly, Setting::kDefault}) {
    SCOPED_TRACE(setting == Setting::kOff ? "--auto_rebalance=false"
                                          : setting == Setting::kMigrationsOnly ? "--max_replicas=1" : "default");
    service_.reset();
    fs::remove_all(db_);
    options_.checkpoint_every = 5;
    options_.auto_rebalance = setting != Setting::kOff;
    options_.max_replicas = setting == Setting::kMigrationsOnly ? 1 : CoordinatorOptions().max_replicas;
    StartService();
    ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
    ASSERT_TRUE(trainer_->ReportLoad(1, {{cluster::ActorKey::Expert(0, 0), 1000, 0}, {cluster::ActorKey::Expert(0, 1), 50, 0},
                                         {cluster::ActorKey::Expert(0, 3), 50, 0}})
                    .ok());
    const uint64_t epoch = Epoch();
    Heartbeater beats({h0_.get(), h1_.get()}, {trainer_.get()});
    beats.step = 11;
    ASSERT_TRUE(WaitFor([&] {
      std::optional<cluster::AdminReplyMessage> holder;
      return Status(holder).getLatestCheckpointStep() == 10;
    }));
    std::optional<cluster::AdminReplyMessage> holder;
    EXPECT_EQ(Status(holder).getMigrations(), 0u);
    if (setting != Setting::kDefault) {
      EXPECT_EQ(Status(holder).getReplications(), 0u);
      EXPECT_EQ(Epoch(), epoch);
      EXPECT_TRUE(trainer_->rollbacks().empty());
      continue;
    }
    EXPECT_EQ(Status(holder).getReplications(), 1u);
    EXPECT_GT(Epoch(), epoch);
    // Both hosts hold E0, host-1's copy restored from checkpoint 5; the trainer replays from there.
    ASSERT_TRUE(WaitFor([&] { return h1_->installed().count(cluster::ActorKey::Expert(0, 0)) == 1; }));
    EXPECT_EQ(h1_->installed().at(cluster::ActorKey::Expert(0, 0)), FakeState(cluster::ActorKey::Expert(0, 0), 5));
    const std::vector<cluster::ActorKey> on_host_0 = h0_->actors();
    EXPECT_EQ(std::count(on_host_0.begin(), on_host_0.end(), cluster::ActorKey::Expert(0, 0)), 1);
    ASSERT_TRUE(WaitFor([&] { return !trainer_->rollbacks().empty(); }));
    EXPECT_EQ(trainer_->rollbacks()[0].step, 5u);
  }
}

TEST_F(ServiceTest, RestartRebuildsCatalogAndPlacementFromTheDatabase) {
  options_.heartbeat_timeout = absl::Milliseconds(600);
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
