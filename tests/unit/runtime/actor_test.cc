// Tests for sy_actor. Deterministic tests step a DeterministicExecutor and
// assert exact message orders and empty mailboxes; threaded tests run on the
// Asio Runtime with concurrent senders.
#include "common/actor/actor.h"

#include <atomic>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/actor/deterministic_executor.h"
#include "common/actor/runtime.h"
#include "common/log/log.h"
#include "common/metrics/registry.h"
#include "gtest/gtest.h"

namespace sy::actor {
namespace {

using std::chrono::milliseconds;

// ---- A calculator: replies, throws, forgets to reply, defers a reply. ----
struct Add { int a, b; };
struct Divide { int a, b; };          // throws std::domain_error on b == 0
struct ThrowInt {};                   // throws a non-std exception
struct Forget {};                     // returns without replying
struct Park {};                       // takes the responder; answered by Release
struct Release { int value; };
struct Record { int sender, seq; };   // appended to the trace
using CalcMsg = std::variant<Add, Divide, ThrowInt, Forget, Park, Release, Record>;

class Calculator : public Actor<CalcMsg> {
 public:
  Calculator(Executor& executor, metrics::Registry* registry = nullptr)
      : Actor(executor, "calc", registry) {
    Become("serving", [this](CalcMsg& msg) { Handle(msg); });
  }
  std::vector<Record> trace;  // read by tests only once the actor is idle
  std::atomic<int> inside{0};
  std::atomic<int> concurrent_entries{0};

 private:
  void Handle(CalcMsg& msg) {
    if (inside.fetch_add(1) != 0) concurrent_entries.fetch_add(1);
    std::visit([this](auto& m) { On(m); }, msg);
    inside.fetch_sub(1);
  }
  void On(Add& m) { Reply(m.a + m.b); }
  void On(Divide& m) {
    if (m.b == 0) {
      inside.fetch_sub(1);
      throw std::domain_error("division by zero");
    }
    Reply(m.a / m.b);
  }
  void On(ThrowInt&) {
    inside.fetch_sub(1);
    throw 7;
  }
  void On(Forget&) {}
  void On(Park&) { parked_.push_back(TakeResponder()); }
  void On(Release& m) {
    for (Responder& r : parked_) r.Reply(m.value);
    parked_.clear();
  }
  void On(Record& m) { trace.push_back(m); }

  std::vector<Responder> parked_;
};

TEST(ActorDeterministicTest, AskGetsTheReply) {
  DeterministicExecutor executor;
  auto calc = std::make_shared<Calculator>(executor);
  AskFuture<int> sum = calc->Ask<int>(Add{2, 3}, milliseconds(100));
  EXPECT_FALSE(sum.ready());
  EXPECT_EQ(calc->mailbox_size(), 1u);
  EXPECT_TRUE(executor.RunOne());
  ASSERT_TRUE(sum.ready());
  EXPECT_EQ(*sum.Wait(), 5);
  EXPECT_EQ(calc->mailbox_size(), 0u);
  EXPECT_EQ(executor.queued_tasks(), 0u);
  EXPECT_EQ(executor.pending_timers(), 0u);  // the reply cancelled the deadline timer
  executor.AdvanceTime(milliseconds(200));
  EXPECT_EQ(sum.Wait().status().code(), absl::StatusCode::kFailedPrecondition);  // taken once
  // An absolute deadline: met, then already passed (fails at once, nothing sent).
  auto in_time = calc->AskUntil<int>(Add{1, 1}, executor.Now() + milliseconds(1));
  executor.RunUntilIdle();
  EXPECT_EQ(*in_time.Wait(), 2);
  auto late = calc->AskUntil<int>(Add{1, 1}, executor.Now());
  ASSERT_TRUE(late.ready());
  EXPECT_EQ(late.Wait().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(calc->mailbox_size(), 0u);
}

TEST(ActorDeterministicTest, ReplyOfTheWrongTypeOrNoReplyIsAnInternalError) {
  DeterministicExecutor executor;
  auto calc = std::make_shared<Calculator>(executor);
  auto wrong = calc->Ask<std::string>(Add{1, 1}, milliseconds(100));
  auto forgot = calc->Ask<int>(Forget{}, milliseconds(100));
  executor.RunUntilIdle();
  EXPECT_EQ(wrong.Wait().status().code(), absl::StatusCode::kInternal);
  const absl::Status no_reply = forgot.Wait().status();
  EXPECT_EQ(no_reply.code(), absl::StatusCode::kInternal);
  EXPECT_NE(no_reply.message().find("without replying"), std::string::npos) << no_reply;
}

TEST(ActorDeterministicTest, AskDeadlineExpiresAndTheLateReplyIsDropped) {
  DeterministicExecutor executor;
  auto calc = std::make_shared<Calculator>(executor);
  auto parked = calc->Ask<int>(Park{}, milliseconds(50));
  executor.RunUntilIdle();
  EXPECT_FALSE(parked.ready());
  executor.AdvanceTime(milliseconds(49));
  EXPECT_FALSE(parked.ready());
  executor.AdvanceTime(milliseconds(1));
  ASSERT_TRUE(parked.ready());
  // The actor answers after the deadline: dropped, no crash, result unchanged.
  calc->Tell(Release{9});
  executor.RunUntilIdle();
  EXPECT_EQ(parked.Wait().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(calc->mailbox_size(), 0u);
}

TEST(ActorDeterministicTest, DeferredReplyBeforeTheDeadlineArrives) {
  DeterministicExecutor executor;
  auto calc = std::make_shared<Calculator>(executor);
  auto parked = calc->Ask<int>(Park{}, milliseconds(50));
  executor.AdvanceTime(milliseconds(10));
  calc->Tell(Release{11});
  executor.RunUntilIdle();
  EXPECT_EQ(*parked.Wait(), 11);
}

TEST(ActorDeterministicTest, ThrowingHandlerIsContainedReportedAndCounted) {
  DeterministicExecutor executor;
  metrics::Registry registry;
  auto calc = std::make_shared<Calculator>(executor, &registry);
  auto bad = calc->Ask<int>(Divide{1, 0}, milliseconds(100));
  auto odd = calc->Ask<int>(ThrowInt{}, milliseconds(100));
  calc->Tell(Divide{1, 0});  // a Tell that throws: nobody to tell, still counted
  auto good = calc->Ask<int>(Divide{9, 3}, milliseconds(100));
  executor.RunUntilIdle();
  const absl::Status error = bad.Wait().status();
  EXPECT_EQ(error.code(), absl::StatusCode::kInternal);
  EXPECT_NE(error.message().find("division by zero"), std::string::npos) << error;
  EXPECT_NE(error.message().find("calc"), std::string::npos) << error;
  EXPECT_EQ(odd.Wait().status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(*good.Wait(), 3);  // the actor kept serving
  EXPECT_DOUBLE_EQ(
      registry.GetCounter("sy_actor_handler_failures_total", "", {{"actor", "calc"}}).value(), 3);
  EXPECT_DOUBLE_EQ(registry.GetCounter("sy_actor_messages_total", "", {{"actor", "calc"}}).value(),
                   4);
  EXPECT_DOUBLE_EQ(registry.GetGauge("sy_actor_mailbox_depth", "", {{"actor", "calc"}}).value(), 0);
  calc->Tell(Forget{});
  calc->Tell(Forget{});
  EXPECT_DOUBLE_EQ(registry.GetGauge("sy_actor_mailbox_depth", "", {{"actor", "calc"}}).value(), 2);
  executor.RunOne();
  EXPECT_DOUBLE_EQ(registry.GetGauge("sy_actor_mailbox_depth", "", {{"actor", "calc"}}).value(), 1);
  executor.RunUntilIdle();
  EXPECT_NE(registry.RenderPrometheus().find("sy_actor_handler_failures_total{actor=\"calc\"} 3"),
            std::string::npos);
}

// ---- Stash / unstash across a phase change (the expert host's step barrier). ----
struct Work { int step; int id; };
struct Commit { int step; };
using StepMsg = std::variant<Work, Commit>;

class StepActor : public Actor<StepMsg> {
 public:
  explicit StepActor(Executor& executor) : Actor(executor, "expert") { EnterStep(0); }
  std::vector<std::string> log;

 private:
  void EnterStep(int step) {
    step_ = step;
    Become("step" + std::to_string(step), [this](StepMsg& msg) {
      if (auto* work = std::get_if<Work>(&msg)) {
        if (work->step > step_) {
          log.push_back("stash " + std::to_string(work->id));
          Stash();
          return;
        }
        log.push_back(behavior_name() + " work " + std::to_string(work->id));
        Reply(work->id * 10);
      } else {
        EnterStep(std::get<Commit>(msg).step + 1);
        log.push_back("commit -> " + behavior_name());
        UnstashAll();
      }
    });
  }
  int step_ = 0;
};

TEST(ActorDeterministicTest, EarlyMessagesWaitInTheStashUntilThePhaseChanges) {
  DeterministicExecutor executor;
  auto actor = std::make_shared<StepActor>(executor);
  auto early = actor->Ask<int>(Work{1, 1}, milliseconds(100));
  actor->Tell(Work{0, 2});
  actor->Tell(Work{1, 3});
  actor->Tell(Commit{0});
  actor->Tell(Work{1, 4});
  executor.RunOne();
  executor.RunOne();
  EXPECT_EQ(actor->stash_size(), 1u);
  EXPECT_FALSE(early.ready());  // a stashed ask keeps its pending reply
  executor.RunUntilIdle();
  EXPECT_EQ(actor->log, (std::vector<std::string>{"stash 1", "step0 work 2", "stash 3",
                                                  "commit -> step1", "step1 work 1",
                                                  "step1 work 3", "step1 work 4"}));
  EXPECT_EQ(*early.Wait(), 10);
  EXPECT_EQ(actor->stash_size(), 0u);
  EXPECT_EQ(actor->mailbox_size(), 0u);
  EXPECT_EQ(executor.queued_tasks(), 0u);
}

// ---- Timers on the deterministic clock. ----
struct Arm { std::string label; int delay_ms; };
struct Disarm { std::string label; };
struct Boom {};
using TimerMsg = std::variant<Arm, Disarm, Boom>;

class TimerActor : public Actor<TimerMsg> {
 public:
  explicit TimerActor(Executor& executor) : Actor(executor, "timers") {
    Become("armed", [this](TimerMsg& msg) {
      if (auto* arm = std::get_if<Arm>(&msg)) {
        const std::string label = arm->label;
        ids_[label] = After(milliseconds(arm->delay_ms), [this, label] {
          fired.push_back(label + "@" + std::to_string(ElapsedMs()));
        });
      } else if (auto* disarm = std::get_if<Disarm>(&msg)) {
        cancelled.push_back(CancelTimer(ids_[disarm->label]));
      } else {
        After(milliseconds(1), [] { throw std::runtime_error("timer boom"); });
      }
    });
  }
  std::vector<std::string> fired;
  std::vector<bool> cancelled;

 private:
  long ElapsedMs() const {
    return static_cast<long>(
        std::chrono::duration_cast<milliseconds>(Now().time_since_epoch()).count());
  }
  std::map<std::string, TimerId> ids_;
};

TEST(ActorDeterministicTest, TimersFireInTimeOrderAndCancellationWorks) {
  DeterministicExecutor executor;
  auto actor = std::make_shared<TimerActor>(executor);
  actor->Tell(Arm{"c", 30});
  actor->Tell(Arm{"a", 10});
  actor->Tell(Arm{"b", 20});
  actor->Tell(Arm{"a2", 10});  // same due time as "a": fires after it
  actor->Tell(Arm{"x", 25});
  actor->Tell(Disarm{"x"});
  actor->Tell(Boom{});          // a throwing timer callback is contained
  executor.RunUntilIdle();
  executor.AdvanceTime(milliseconds(15));
  EXPECT_EQ(actor->fired, (std::vector<std::string>{"a@10", "a2@10"}));
  executor.AdvanceTime(milliseconds(100));
  EXPECT_EQ(actor->fired, (std::vector<std::string>{"a@10", "a2@10", "b@20", "c@30"}));
  actor->Tell(Disarm{"a"});  // already fired: nothing to cancel
  executor.RunUntilIdle();
  EXPECT_EQ(actor->cancelled, (std::vector<bool>{true, false}));
  EXPECT_EQ(executor.pending_timers(), 0u);
  EXPECT_EQ(actor->mailbox_size(), 0u);
}

// ---- Two actors exchanging messages: the schedule is reproducible. ----
struct Ping { int n; };
using PingMsg = std::variant<Ping>;

class Pinger : public Actor<PingMsg> {
 public:
  Pinger(Executor& executor, std::string name, std::vector<std::string>* trace)
      : Actor(executor, std::move(name)) {
    Become("play", [this, trace](PingMsg& msg) {
      const int n = std::get<Ping>(msg).n;
      trace->push_back(this->name() + ":" + std::to_string(n));
      if (n > 0 && peer) peer->Tell(Ping{n - 1});
    });
  }
  std::shared_ptr<Pinger> peer;
};

std::vector<std::string> PlayPingPong() {
  DeterministicExecutor executor;
  std::vector<std::string> trace;
  auto a = std::make_shared<Pinger>(executor, "a", &trace);
  auto b = std::make_shared<Pinger>(executor, "b", &trace);
  auto c = std::make_shared<Pinger>(executor, "c", &trace);
  a->peer = b;
  b->peer = a;
  c->peer = a;
  a->Tell(Ping{3});
  c->Tell(Ping{2});
  b->Tell(Ping{1});
  executor.RunUntilIdle();
  EXPECT_EQ(a->mailbox_size() + b->mailbox_size() + c->mailbox_size(), 0u);
  a->peer.reset();  // break the cycle
  b->peer.reset();
  return trace;
}

TEST(ActorDeterministicTest, SchedulerGivesTheSameOrderEveryRun) {
  const std::vector<std::string> first = PlayPingPong();
  EXPECT_EQ(first, (std::vector<std::string>{"a:3", "c:2", "b:1", "a:1", "b:2", "a:0", "b:0",
                                             "a:1", "b:0"}));
  for (int run = 0; run < 5; ++run) EXPECT_EQ(PlayPingPong(), first);
}

// ---- On the Asio runtime, with real threads. ----
TEST(ActorRuntimeTest, ConcurrentSendersLoseNothingAndKeepPerSenderOrder) {
  Runtime runtime(4);
  auto calc = std::make_shared<Calculator>(runtime);
  constexpr int kSenders = 8, kPerSender = 1000;
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&calc, s] {
      for (int i = 0; i < kPerSender; ++i) calc->Tell(Record{s, i});
    });
  }
  for (auto& sender : senders) sender.join();
  // An ask queued behind every Tell: its reply means all of them were handled.
  ASSERT_EQ(*calc->Ask<int>(Add{0, 0}, std::chrono::seconds(30)).Wait(), 0);
  ASSERT_EQ(calc->trace.size(), static_cast<size_t>(kSenders * kPerSender));
  std::vector<int> next(kSenders, 0);
  for (const Record& r : calc->trace) {
    ASSERT_EQ(r.seq, next[r.sender]) << "sender " << r.sender << " out of order";
    ++next[r.sender];
  }
  EXPECT_EQ(calc->concurrent_entries.load(), 0);
  EXPECT_EQ(calc->mailbox_size(), 0u);
}

TEST(ActorRuntimeTest, ManyActorsAreEachEnteredByOneThreadAtATime) {
  Runtime runtime(4);
  std::vector<std::shared_ptr<Calculator>> actors;
  for (int i = 0; i < 4; ++i) actors.push_back(std::make_shared<Calculator>(runtime));
  std::vector<std::thread> senders;
  for (int s = 0; s < 4; ++s) {
    senders.emplace_back([&actors, s] {
      for (int i = 0; i < 2000; ++i) actors[i % actors.size()]->Tell(Record{s, i});
    });
  }
  for (auto& sender : senders) sender.join();
  for (auto& actor : actors) {
    ASSERT_TRUE(actor->Ask<int>(Add{1, 1}, std::chrono::seconds(30)).Wait().ok());
    EXPECT_EQ(actor->trace.size(), 2000u);
    EXPECT_EQ(actor->concurrent_entries.load(), 0);
  }
}

TEST(ActorRuntimeTest, AskWaitsForRealRepliesAndRealDeadlines) {
  Runtime runtime(2);
  auto calc = std::make_shared<Calculator>(runtime);
  std::vector<AskFuture<int>> sums;
  for (int i = 0; i < 100; ++i) sums.push_back(calc->Ask<int>(Add{i, i}, std::chrono::seconds(30)));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(*sums[i].Wait(), 2 * i);

  auto parked = calc->Ask<int>(Park{}, milliseconds(20));
  EXPECT_EQ(parked.Wait().status().code(), absl::StatusCode::kDeadlineExceeded);
  calc->Tell(Release{1});  // the late reply is dropped
  std::atomic<int> via_callback{-1};
  absl::Notification done;
  calc->Ask<int>(Add{20, 22}, std::chrono::seconds(30)).Then([&](absl::StatusOr<int> r) {
    via_callback = *r;
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_EQ(via_callback.load(), 42);
}

// An actor that asks another and continues on its own strand.
struct Compute { int a, b; };
using FrontMsg = std::variant<Compute>;

class Frontend : public Actor<FrontMsg> {
 public:
  Frontend(Executor& executor, std::shared_ptr<Calculator> calc)
      : Actor(executor, "frontend"), calc_(std::move(calc)) {
    Become("serving", [this](FrontMsg& msg) {
      auto& m = std::get<Compute>(msg);
      auto responder = std::make_shared<Responder>(TakeResponder());
      Await<int>(calc_->Ask<int>(Add{m.a, m.b}, std::chrono::seconds(30)),
                 [this, responder](absl::StatusOr<int> sum) {
                   ++answered_;  // on this actor's strand: no lock
                   responder->Reply(std::string("sum=") + std::to_string(*sum) + " after " +
                                    std::to_string(answered_));
                 });
    });
  }

 private:
  std::shared_ptr<Calculator> calc_;
  int answered_ = 0;
};

TEST(ActorRuntimeTest, AwaitContinuesOnTheAskingActorsStrand) {
  Runtime runtime(2);
  auto calc = std::make_shared<Calculator>(runtime);
  auto front = std::make_shared<Frontend>(runtime, calc);
  auto first = front->Ask<std::string>(Compute{1, 2}, std::chrono::seconds(30));
  EXPECT_EQ(*first.Wait(), "sum=3 after 1");
  EXPECT_EQ(*front->Ask<std::string>(Compute{5, 5}, std::chrono::seconds(30)).Wait(),
            "sum=10 after 2");
}

TEST(ActorRuntimeTest, ShutdownDrainsQueuedMessagesOrCancelsThem) {
  std::shared_ptr<Calculator> drained;
  {
    Runtime runtime(2);
    drained = std::make_shared<Calculator>(runtime);
    for (int i = 0; i < 500; ++i) drained->Tell(Record{0, i});
    runtime.Shutdown(Runtime::ShutdownMode::kDrain);
    EXPECT_EQ(drained->trace.size(), 500u);
    // After shutdown, messages are dropped and asks fail with Unavailable.
    auto late = drained->Ask<int>(Add{1, 2}, std::chrono::seconds(30));
    EXPECT_EQ(late.Wait().status().code(), absl::StatusCode::kUnavailable);
    drained.reset();
  }
  Runtime runtime(1);
  auto blocked = std::make_shared<Calculator>(runtime);
  auto parked = blocked->Ask<int>(Park{}, std::chrono::seconds(30));
  std::vector<AskFuture<int>> queued;
  for (int i = 0; i < 50; ++i) queued.push_back(blocked->Ask<int>(Add{i, 0}, std::chrono::seconds(30)));
  runtime.Shutdown(Runtime::ShutdownMode::kCancel);
  blocked.reset();  // drops the parked responder and any message not handled
  EXPECT_EQ(parked.Wait().status().code(), absl::StatusCode::kUnavailable);
  for (auto& future : queued) {
    const absl::StatusOr<int> result = future.Wait();
    EXPECT_TRUE(result.ok() || result.status().code() == absl::StatusCode::kUnavailable)
        << result.status();
  }
}

}  // namespace
}  // namespace sy::actor
