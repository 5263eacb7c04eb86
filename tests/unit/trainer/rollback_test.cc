// The trainer's failure handling without processes: decoding and validating the
// coordinator's rollback order, the micro-batch split of a live trainer set, the
// rollback mailbox, metrics.jsonl rewritten on replay, and request batches that
// refresh the placement and resend after a stale-epoch refusal (in-process hosts)
// or end at once when a rollback aborts the step.
#include <atomic>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>
#include <string>
#include <thread>
#include <vector>

#include <capnp/message.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/transport/inproc_transport.h"
#include "common/transport/rpc.h"
#include "gpu/model/config.h"
#include "gpu/model/grad_tree.h"
#include "proto/coordinator.capnp.h"
#include "proto/envelope.capnp.h"
#include "services/cluster/placement.h"
#include "services/trainer/metrics_files.h"
#include "services/trainer/rollback.h"
#include "services/trainer/rpc_batch.h"
#include "tests/support/inproc_node.h"

namespace sy::trainer {
namespace {

// A TrainerControlRequest{epoch, rollback{step, checkpoint, trainers}} to decode.
struct ControlMessage {
  capnp::MallocMessageBuilder builder;
  proto::coordinator::TrainerControlRequest::Builder request = builder.initRoot<proto::coordinator::TrainerControlRequest>();

  ControlMessage(uint64_t epoch, uint64_t step, uint64_t checkpoint, const std::vector<std::string>& trainers) {
    request.setEpoch(epoch);
    auto rollback = request.initRollback();
    rollback.setStep(step);
    rollback.setCheckpointId(checkpoint);
    auto list = rollback.initTrainers(static_cast<unsigned>(trainers.size()));
    for (size_t i = 0; i < trainers.size(); ++i) list.set(static_cast<unsigned>(i), trainers[i]);
  }
  proto::coordinator::TrainerControlRequest::Reader reader() { return request.asReader(); }
};

TEST(DecodeRollback, ReadsEveryField) {
  ControlMessage m(7, 4, 2, {"trainer-0", "trainer-2"});
  absl::StatusOr<RollbackOrder> order = DecodeRollback(m.reader(), 10);
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_EQ(order->epoch, 7u);
  EXPECT_EQ(order->step, 4u);
  EXPECT_EQ(order->checkpoint_id, 2u);
  EXPECT_EQ(order->trainers, (std::vector<std::string>{"trainer-0", "trainer-2"}));
}

TEST(DecodeRollback, EmptyTrainerListMeansUnchangedAndStepZeroIsTheStart) {
  ControlMessage m(3, 0, 1, {});
  absl::StatusOr<RollbackOrder> order = DecodeRollback(m.reader(), 10);
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_TRUE(order->trainers.empty());
  EXPECT_EQ(order->step, 0u);
}

TEST(DecodeRollback, RefusesBadOrders) {
  {
    ControlMessage m(0, 4, 2, {});
    EXPECT_TRUE(absl::IsInvalidArgument(DecodeRollback(m.reader(), 10).status()));
  }
  {
    ControlMessage m(5, 11, 2, {});
    absl::Status s = DecodeRollback(m.reader(), 10).status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_NE(s.message().find("step 11"), std::string::npos) << s;
  }
  {
    ControlMessage m(5, 4, 2, {"trainer-0", "trainer-0"});
    absl::Status s = DecodeRollback(m.reader(), 10).status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_NE(s.message().find("twice"), std::string::npos) << s;
  }
  {
    ControlMessage m(5, 4, 2, {"trainer-0", ""});
    EXPECT_TRUE(absl::IsInvalidArgument(DecodeRollback(m.reader(), 10).status()));
  }
  {
    ControlMessage m(5, 4, 2, {});
    m.request.setPause();
    EXPECT_TRUE(absl::IsUnimplemented(DecodeRollback(m.reader(), 10).status()));
  }
}

TEST(TrainerSet, SlotFollowsThePositionInTheList) {
  const std::vector<std::string> live = {"trainer-0", "trainer-2"};
  absl::StatusOr<TrainerSlot> slot = SlotIn(live, "trainer-2");
  ASSERT_TRUE(slot.ok()) << slot.status();
  EXPECT_EQ(slot->index, 1);
  EXPECT_EQ(slot->count, 2);
  EXPECT_TRUE(absl::IsNotFound(SlotIn(live, "trainer-1").status()));
}

TEST(TrainerSet, MicroBatchesSplitIntoConsecutiveSharesThatCoverTheStepOnce) {
  EXPECT_EQ(MicroBatchesOf({1, 2}, 5), (std::vector<int>{3, 4}));
  EXPECT_EQ(MicroBatchesOf({0, 2}, 5), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(MicroBatchesOf({1, 2}, 4), (std::vector<int>{2, 3}));
  EXPECT_EQ(MicroBatchesOf({2, 3}, 2), (std::vector<int>{}));
  EXPECT_EQ(MicroBatchesOf({3, 3}, 4), (std::vector<int>{})) << "a slot past the trainer count has none";
  for (int n = 1; n <= 4; ++n) {
    std::multiset<int> all;
    for (int i = 0; i < n; ++i) {
      for (int m : MicroBatchesOf({i, n}, 7)) all.insert(m);
    }
    ASSERT_EQ(all.size(), 7u) << n << " trainers";
    for (int m = 0; m < 7; ++m) EXPECT_EQ(all.count(m), 1u) << "micro-batch " << m << " with " << n << " trainers";
  }
}

TEST(TrainerSet, DenseNodesAreTheTreeNodesThatMakeUpEachShare) {
  using Spans = std::vector<std::pair<uint32_t, uint32_t>>;
  auto spans = [](const std::vector<sy::cluster::MicroBatchSpan>& nodes) {
    Spans out;
    for (const auto& n : nodes) out.push_back({n.first, n.end});
    return out;
  };
  EXPECT_EQ(spans(DenseNodesOf({0, 1}, 4)), (Spans{{0, 4}})) << "one trainer pushes the root once";
  EXPECT_EQ(spans(DenseNodesOf({1, 2}, 4)), (Spans{{2, 4}}));
  EXPECT_EQ(spans(DenseNodesOf({0, 2}, 6)), (Spans{{0, 2}, {2, 3}}));
  EXPECT_TRUE(DenseNodesOf({2, 3}, 2).empty()) << "no share, no pushes";
  for (int n = 1; n <= 4; ++n) {
    for (int M = 1; M <= 9; ++M) {
      for (int i = 0; i < n; ++i) {
        const std::vector<int> share = MicroBatchesOf({i, n}, M);
        uint32_t next = share.empty() ? 0 : static_cast<uint32_t>(share.front());
        for (const auto& node : DenseNodesOf({i, n}, M)) {
          EXPECT_EQ(node.first, next) << "nodes ascend without gaps";
          EXPECT_TRUE(sy::gpu::GradTree::IsNode(static_cast<int>(node.first), static_cast<int>(node.end), M));
          next = node.end;
        }
        if (!share.empty()) {
          EXPECT_EQ(next, static_cast<uint32_t>(share.back() + 1)) << "the nodes end the share";
        }
      }
    }
  }
}

RollbackOrder Order(uint64_t epoch, uint64_t step) {
  RollbackOrder order;
  order.epoch = epoch;
  order.step = step;
  return order;
}

TEST(RollbackMailbox, PostAbortsUntilTaken) {
  RollbackMailbox mailbox;
  EXPECT_FALSE(mailbox.aborted());
  EXPECT_FALSE(mailbox.Take().has_value());
  ASSERT_TRUE(mailbox.Post(Order(3, 4)).ok());
  EXPECT_TRUE(mailbox.aborted());
  std::optional<RollbackOrder> order = mailbox.Take();
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(order->step, 4u);
  EXPECT_FALSE(mailbox.aborted());
}

TEST(RollbackMailbox, OlderEpochIsRefusedAndChangesNothing) {
  RollbackMailbox mailbox;
  ASSERT_TRUE(mailbox.Post(Order(5, 6)).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(mailbox.Post(Order(4, 2))));
  std::optional<RollbackOrder> order = mailbox.Take();
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(order->epoch, 5u);
  EXPECT_EQ(order->step, 6u);
  EXPECT_TRUE(absl::IsFailedPrecondition(mailbox.Post(Order(4, 2))));  // still older than one seen
  EXPECT_TRUE(mailbox.Post(Order(5, 3)).ok());                         // the same epoch may roll back again
}

TEST(RollbackMailbox, AwaitIsBoundedAndWakesOnPost) {
  RollbackMailbox mailbox;
  const absl::Time start = absl::Now();
  EXPECT_FALSE(mailbox.Await(absl::Milliseconds(50)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(45));
  std::thread poster([&mailbox] {
    absl::SleepFor(absl::Milliseconds(50));
    (void)mailbox.Post(Order(2, 1));
  });
  EXPECT_TRUE(mailbox.Await(absl::Seconds(30)));
  poster.join();
  EXPECT_TRUE(mailbox.Take().has_value());
}

TEST(RollbackMailbox, AStopAbortsForGoodWakesAwaitAndKeepsTheFirstReason) {
  RollbackMailbox mailbox;
  std::thread stopper([&mailbox] {
    absl::SleepFor(absl::Milliseconds(50));
    mailbox.PostStop("recovery impossible: no checkpoint");
  });
  EXPECT_TRUE(mailbox.Await(absl::Seconds(30)));
  stopper.join();
  EXPECT_TRUE(mailbox.aborted());
  mailbox.PostStop("a later reason");
  ASSERT_TRUE(mailbox.stopped().has_value());
  EXPECT_EQ(*mailbox.stopped(), "recovery impossible: no checkpoint");
  // A rollback taken afterwards does not lower it: the run is over.
  ASSERT_TRUE(mailbox.Post(Order(2, 1)).ok());
  EXPECT_TRUE(mailbox.Take().has_value());
  EXPECT_TRUE(mailbox.aborted());
}

// Everything on one host at one epoch (what the table says after host-1's actors moved to host-0).
class AllOnOneHost : public cluster::Placement {
 public:
  AllOnOneHost(int num_hosts, int host, uint64_t epoch) : num_hosts_(num_hosts), host_(host), epoch_(epoch) {}
  int num_hosts() const override { return num_hosts_; }
  uint64_t epoch() const override { return epoch_; }
  int HostOfExpert(int, int) const override { return host_; }
  int HostOfDenseShard(int) const override { return host_; }

 private:
  int num_hosts_, host_;
  uint64_t epoch_;
};

TEST(LivePlacement, ReplaceSwitchesAnswersAndTheHostsInUse) {
  gpu::ModelConfig config;
  config.layers = 2;
  config.experts = 4;
  cluster::LivePlacement live(std::make_unique<cluster::StaticPlacement>(config, 2));
  EXPECT_EQ(live.epoch(), 0u);
  EXPECT_EQ(cluster::HostsInUse(live, config, 3, 1), (std::vector<int>{0, 1}));
  live.Replace(std::make_unique<AllOnOneHost>(2, 0, 3));
  EXPECT_EQ(live.epoch(), 3u);
  EXPECT_EQ(live.HostOfDenseShard(1), 0);
  EXPECT_EQ(cluster::HostsInUse(live, config, 3, 1), (std::vector<int>{0}));
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(MetricsWriterReplay, DropAfterThenReplayLeavesOneLinePerStep) {
  const std::string path = ::testing::TempDir() + "/rollback_metrics.jsonl";
  auto writer = MetricsWriter::Create(path);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (int64_t s = 1; s <= 5; ++s) {
    StepMetrics m;
    m.step = s;
    m.loss = 10.0 + s;  // first run
    ASSERT_TRUE((*writer)->Append(m).ok());
  }
  ASSERT_TRUE((*writer)->DropAfter(2).ok());
  EXPECT_EQ(Lines(path).size(), 2u);
  for (int64_t s = 3; s <= 6; ++s) {
    StepMetrics m;
    m.step = s;
    m.loss = 20.0 + s;  // replay
    ASSERT_TRUE((*writer)->Append(m).ok());
  }
  const std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 6u);
  for (int64_t s = 1; s <= 6; ++s) {
    StepMetrics m;
    m.step = s;
    m.loss = (s <= 2 ? 10.0 : 20.0) + s;
    EXPECT_EQ(lines[static_cast<size_t>(s - 1)], StepMetricsJson(m)) << "step " << s;
  }
}

// --- request batches against in-process hosts

// A host that refuses requests stamped below `current_epoch` as stale (Aborted,
// naming the current epoch) and answers the rest; counts what it saw.
struct FakeHost {
  std::atomic<uint64_t> current_epoch{0};
  std::atomic<int> refused{0};
  std::atomic<int> answered{0};
  std::atomic<bool> silent{false};  // never answers (a dead host)
  std::unique_ptr<transport::RpcNode> node;

  void Start(transport::InProcNetwork& net, const std::string& name) {
    auto rpc = test_support::ServeInProc(
        net, name, [this](transport::DecodedMessage request, transport::Responder responder) {
          if (silent.load()) return;
          const uint64_t epoch = request.envelope().getPlacementEpoch();
          if (epoch < current_epoch.load()) {
            ++refused;
            absl::Status stale = absl::AbortedError(
                absl::StrCat("placement epoch ", epoch, " is stale; the current epoch is ", current_epoch.load()));
            stale.SetPayload(transport::kCurrentEpochPayload, absl::Cord(absl::StrCat(current_epoch.load())));
            return responder.Fail(stale);
          }
          ++answered;
          capnp::MallocMessageBuilder reply;
          reply.initRoot<proto::Envelope>().setKind(request.envelope().getKind());
          responder.Reply(reply);
        });
    ASSERT_TRUE(rpc.ok()) << rpc.status();
    node = *std::move(rpc);
  }
};

// The trainer's side: its placement says which host holds "the actor" and at which epoch.
class FakeGuard : public CallGuard {
 public:
  absl::Status RefreshPlacement(uint64_t epoch) override {
    refreshes.push_back(epoch);
    if (rollback_on_refresh) abort = true;
    if (!refresh_result.ok()) return refresh_result;
    epoch_ = std::max(epoch_, table_epoch);
    host = table_host;
    return absl::OkStatus();
  }
  uint64_t epoch() const override { return epoch_; }
  bool aborted() const override { return abort.load(); }

  uint64_t epoch_ = 1;
  std::string host = "host-0";
  // What the coordinator's table says after a refresh.
  uint64_t table_epoch = 2;
  std::string table_host = "host-1";
  absl::Status refresh_result;
  std::vector<uint64_t> refreshes;
  std::atomic<bool> abort{false};
  bool rollback_on_refresh = false;  // the coordinator's rollback arrives while refreshing
};

class StaleEpochTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host0.Start(net, "host-0");
    host1.Start(net, "host-1");
    auto t = net.CreateTransport("trainer-0");
    ASSERT_TRUE(t.ok());
    ASSERT_TRUE((*t)->Connect("host-0", "inproc://host-0").ok());
    ASSERT_TRUE((*t)->Connect("host-1", "inproc://host-1").ok());
    auto rpc = transport::RpcNode::Create(*std::move(t), {}, nullptr);
    ASSERT_TRUE(rpc.ok());
    trainer = *std::move(rpc);
  }

  // One call to wherever the guard's placement puts the actor, stamped with its epoch.
  std::vector<OutgoingCall> OneCall() {
    std::vector<OutgoingCall> calls(1);
    calls[0].to = {guard.host, transport::Route::kConnected};
    calls[0].route = [this] { return transport::Address{guard.host, transport::Route::kConnected}; };
    calls[0].what = "pull of the actor";
    auto env = calls[0].header->initRoot<proto::Envelope>();
    env.setKind(proto::MessageKind::PING);
    env.setPlacementEpoch(guard.epoch());
    return calls;
  }

  transport::InProcNetwork net;
  FakeHost host0, host1;
  std::unique_ptr<transport::RpcNode> trainer;
  FakeGuard guard;
};

TEST_F(StaleEpochTest, RefusalRefreshesThePlacementAndResendsToTheNewHost) {
  host0.current_epoch = 2;  // the actor moved to host-1 at epoch 2
  host1.current_epoch = 2;
  std::vector<OutgoingCall> calls = OneCall();
  auto replies = CallAll(*trainer, calls, absl::Now() + absl::Seconds(10), &guard);
  ASSERT_EQ(replies.size(), 1u);
  ASSERT_TRUE(replies[0].ok()) << replies[0].status();
  EXPECT_EQ(guard.refreshes, (std::vector<uint64_t>{2}));
  EXPECT_EQ(host0.refused.load(), 1);
  EXPECT_EQ(host0.answered.load(), 0);
  EXPECT_EQ(host1.answered.load(), 1);
  EXPECT_EQ(calls[0].to.peer, "host-1");
  EXPECT_EQ(calls[0].header->getRoot<proto::Envelope>().getPlacementEpoch(), 2u);
}

TEST_F(StaleEpochTest, ARollbackDuringTheRefreshEndsTheCallWithoutAResend) {
  host0.current_epoch = 2;  // actors moved: the coordinator restores them and rolls the trainers back
  host1.current_epoch = 2;
  guard.rollback_on_refresh = true;
  std::vector<OutgoingCall> calls = OneCall();
  auto replies = CallAll(*trainer, calls, absl::Now() + absl::Seconds(10), &guard);
  ASSERT_FALSE(replies[0].ok());
  EXPECT_TRUE(absl::IsAborted(replies[0].status())) << replies[0].status();
  EXPECT_EQ(StaleEpochOf(replies[0].status()), std::nullopt);
  EXPECT_NE(replies[0].status().message().find("aborted by a rollback"), std::string::npos);
  EXPECT_EQ(guard.refreshes.size(), 1u);
  EXPECT_EQ(host1.answered.load(), 0) << "nothing of the abandoned step reaches the restored host";
  EXPECT_EQ(host0.refused.load(), 1);
}

TEST_F(StaleEpochTest, WithoutAGuardTheRefusalComesBackWithTheCurrentEpoch) {
  host0.current_epoch = 2;
  std::vector<OutgoingCall> calls = OneCall();
  auto replies = CallAll(*trainer, calls, absl::Now() + absl::Seconds(10));
  ASSERT_FALSE(replies[0].ok());
  EXPECT_TRUE(absl::IsAborted(replies[0].status())) << replies[0].status();
  EXPECT_EQ(StaleEpochOf(replies[0].status()), std::optional<uint64_t>(2));
  EXPECT_NE(replies[0].status().message().find("pull of the actor"), std::string::npos);
  EXPECT_EQ(StaleEpochOf(absl::AbortedError("the host was restored")), std::nullopt);
}

TEST_F(StaleEpochTest, ResendsAreBounded) {
  host0.current_epoch = 9;  // the table never catches up with what the host says
  guard.table_host = "host-0";
  guard.table_epoch = 2;
  std::vector<OutgoingCall> calls = OneCall();
  auto replies = CallAll(*trainer, calls, absl::Now() + absl::Seconds(10), &guard);
  ASSERT_FALSE(replies[0].ok());
  EXPECT_EQ(StaleEpochOf(replies[0].status()), std::optional<uint64_t>(9));
  EXPECT_EQ(static_cast<int>(guard.refreshes.size()), kMaxStaleEpochResends);
  EXPECT_EQ(host0.refused.load(), kMaxStaleEpochResends + 1);
}

TEST_F(StaleEpochTest, AFailedRefreshEndsTheCallWithItsError) {
  host0.current_epoch = 2;
  guard.refresh_result = absl::DeadlineExceededError("the coordinator's table did not reach epoch 2");
  std::vector<OutgoingCall> calls = OneCall();
  auto replies = CallAll(*trainer, calls, absl::Now() + absl::Seconds(10), &guard);
  ASSERT_FALSE(replies[0].ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(replies[0].status())) << replies[0].status();
  EXPECT_EQ(host1.answered.load(), 0);
}

TEST_F(StaleEpochTest, RollbackAbortEndsAWaitOnADeadHostAtOnce) {
  host0.silent = true;
  std::vector<OutgoingCall> calls = OneCall();
  PendingCalls pending = PendingCalls::Start(*trainer, std::move(calls), absl::Now() + absl::Seconds(60), &guard);
  std::thread rollback([this] {
    absl::SleepFor(absl::Milliseconds(100));
    guard.abort = true;
  });
  const absl::Time start = absl::Now();
  auto replies = pending.Wait();
  rollback.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(absl::IsAborted(replies[0].status())) << replies[0].status();
  EXPECT_EQ(StaleEpochOf(replies[0].status()), std::nullopt);
}

}  // namespace
}  // namespace sy::trainer
