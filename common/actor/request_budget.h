// RequestBudget: a service's door hands requests to actors whose mailboxes have no
// bound of their own; this bounds what the handed-over requests not yet handled hold
// (a count and their bytes), so a peer that floods a door cannot grow the process's
// memory. Both the coordinator (which waits for room, slowing its senders) and the
// expert host (which refuses at once) use it. A request's share is held by a Ticket
// that travels in the actor's message and gives it back when the last copy is
// destroyed (answered, refused, expired), even after the budget itself is gone.
// Thread-safe: tickets are taken on the door's thread and released on the actors'.
#pragma once

#include <cstddef>
#include <limits>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sy::actor {

class RequestBudget {
 public:
  struct Limits {
    size_t max_requests = std::numeric_limits<size_t>::max();
    size_t max_bytes = std::numeric_limits<size_t>::max();
  };

  // One admitted request's share of the budget; an empty ticket holds nothing.
  class Ticket {
   public:
    Ticket() = default;

   private:
    friend class RequestBudget;
    std::shared_ptr<void> hold_;
  };

  // `owner` names the service in refusals ("the coordinator").
  RequestBudget(std::string owner, Limits limits);

  // A ticket for a request holding `bytes` when it fits beside what is held now;
  // otherwise ResourceExhausted at once (naming what is held and the limits).
  absl::StatusOr<Ticket> TryTake(size_t bytes);

  // The same, waiting until it fits, at most until `deadline`. A request larger than
  // the limits never fits beside others: it is admitted once nothing else is held.
  absl::StatusOr<Ticket> Take(size_t bytes, absl::Time deadline);

  size_t requests() const;
  size_t bytes() const;

 private:
  struct Held {
    absl::Mutex mu;
    size_t requests ABSL_GUARDED_BY(mu) = 0;
    size_t bytes ABSL_GUARDED_BY(mu) = 0;
  };

  bool Fits(size_t bytes) const ABSL_SHARED_LOCKS_REQUIRED(held_->mu);
  absl::Status Busy(size_t bytes) const ABSL_SHARED_LOCKS_REQUIRED(held_->mu);
  // Counts `bytes` as held (under the lock) and returns the ticket that gives them back.
  Ticket Hold(size_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(held_->mu);

  const std::string owner_;
  const Limits limits_;
  // Shared with the tickets, so a ticket outliving the budget releases safely.
  const std::shared_ptr<Held> held_ = std::make_shared<Held>();
};

}  // namespace sy::actor
