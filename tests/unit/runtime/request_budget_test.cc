// The RequestBudget both doors use: TryTake refuses at once past either limit, Take
// waits for room until its deadline, a request larger than the limits waits until it
// is alone, and a ticket gives its share back when its last copy is destroyed, even
// after the budget itself is gone.
#include "common/actor/request_budget.h"

#include <limits>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "absl/time/clock.h"

namespace sy::actor {
namespace {

RequestBudget::Limits Limits(size_t max_requests, size_t max_bytes) {
  RequestBudget::Limits limits;
  limits.max_requests = max_requests;
  limits.max_bytes = max_bytes;
  return limits;
}

TEST(RequestBudgetTest, TryTakeRefusesPastTheRequestLimitAndNamesTheOwner) {
  RequestBudget budget("the test host", Limits(2, 1000));
  absl::StatusOr<RequestBudget::Ticket> first = budget.TryTake(10);
  absl::StatusOr<RequestBudget::Ticket> second = budget.TryTake(10);
  ASSERT_TRUE(first.ok() && second.ok());
  const absl::StatusOr<RequestBudget::Ticket> third = budget.TryTake(10);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(third.status().message().find("the test host is busy: 2 requests of 20 bytes"), std::string::npos)
      << third.status();
  EXPECT_EQ(budget.requests(), 2u);  // a refusal holds nothing
  EXPECT_EQ(budget.bytes(), 20u);
}

TEST(RequestBudgetTest, TryTakeRefusesPastTheByteLimitEvenWhenNothingIsHeld) {
  RequestBudget budget("the test host", Limits(10, 100));
  EXPECT_EQ(budget.TryTake(101).status().code(), absl::StatusCode::kResourceExhausted);
  absl::StatusOr<RequestBudget::Ticket> most = budget.TryTake(60);
  ASSERT_TRUE(most.ok());
  EXPECT_EQ(budget.TryTake(41).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(budget.TryTake(40).ok());  // exactly fits (and is given back at once)
  EXPECT_EQ(budget.bytes(), 60u);
}

TEST(RequestBudgetTest, TheShareIsGivenBackWhenTheLastCopyOfTheTicketIsDestroyed) {
  RequestBudget budget("the test host", Limits(1, 100));
  std::optional<RequestBudget::Ticket> copy;
  {
    absl::StatusOr<RequestBudget::Ticket> ticket = budget.TryTake(30);
    ASSERT_TRUE(ticket.ok());
    copy = *ticket;
  }
  EXPECT_EQ(budget.requests(), 1u);
  EXPECT_EQ(budget.bytes(), 30u);
  EXPECT_FALSE(budget.TryTake(1).ok());
  copy.reset();
  EXPECT_EQ(budget.requests(), 0u);
  EXPECT_EQ(budget.bytes(), 0u);
  EXPECT_TRUE(budget.TryTake(1).ok());
}

TEST(RequestBudgetTest, ATicketMayOutliveItsBudget) {
  std::optional<RequestBudget::Ticket> ticket;
  {
    RequestBudget budget("the test host", Limits(1, 100));
    ticket = *budget.TryTake(30);
  }
  ticket.reset();  // releases into the shared count, not the destroyed budget
}

TEST(RequestBudgetTest, TakeRefusesAtItsDeadlineWhatDoesNotFit) {
  RequestBudget budget("the coordinator", {});
  RequestBudget bytes_only("the coordinator", Limits(std::numeric_limits<size_t>::max(), 100));
  absl::StatusOr<RequestBudget::Ticket> held = bytes_only.Take(80, absl::InfiniteFuture());
  ASSERT_TRUE(held.ok());
  const absl::StatusOr<RequestBudget::Ticket> late = bytes_only.Take(30, absl::Now() - absl::Seconds(1));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(late.status().message().find("(at most 100 bytes)"), std::string::npos) << late.status();
  EXPECT_EQ(bytes_only.requests(), 1u);
  EXPECT_TRUE(budget.Take(1u << 30, absl::Now()).ok());  // no limits: always fits
}

TEST(RequestBudgetTest, TakeWaitsUntilAnEarlierRequestIsHandled) {
  RequestBudget budget("the coordinator", Limits(std::numeric_limits<size_t>::max(), 100));
  std::optional<RequestBudget::Ticket> held = *budget.Take(80, absl::InfiniteFuture());
  absl::StatusOr<RequestBudget::Ticket> waiting = absl::UnknownError("not taken");
  std::thread door([&] { waiting = budget.Take(30, absl::InfiniteFuture()); });
  held.reset();  // the actor handled the first request
  door.join();
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_EQ(budget.requests(), 1u);
  EXPECT_EQ(budget.bytes(), 30u);
}

TEST(RequestBudgetTest, TakeAdmitsARequestLargerThanTheLimitOnceNothingElseIsHeld) {
  RequestBudget budget("the coordinator", Limits(std::numeric_limits<size_t>::max(), 100));
  absl::StatusOr<RequestBudget::Ticket> small = budget.Take(10, absl::InfiniteFuture());
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(budget.Take(500, absl::Now()).status().code(), absl::StatusCode::kResourceExhausted);
  small = absl::UnknownError("handled");  // destroys the ticket
  absl::StatusOr<RequestBudget::Ticket> large = budget.Take(500, absl::Now());
  ASSERT_TRUE(large.ok()) << large.status();
  EXPECT_EQ(budget.bytes(), 500u);
  EXPECT_EQ(budget.TryTake(1).status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace sy::actor
