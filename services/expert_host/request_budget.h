// What requests handed to a host's actors may hold at once, whether they wait in a
// mailbox or parked for a newer version: at most `max_requests` requests and
// `max_bytes` bytes. A peer that floods the host (parked requests for the next step,
// evaluation forwards faster than the backend runs them) is refused with
// ResourceExhausted at the door instead of growing the host's memory; the bound is
// released when the request's message is destroyed (answered, refused, expired).
// Thread-safe: tickets are taken on the RPC thread and released on the actors'.
#pragma once

#include <cstddef>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/expert_host/host_limits.h"

namespace sy::expert_host {

class RequestBudget {
 public:
  // One admitted request's share of the budget, given back when the last copy is destroyed.
  class Ticket {
   public:
    Ticket() = default;

   private:
    friend class RequestBudget;
    std::shared_ptr<void> hold_;
  };

  explicit RequestBudget(RequestLimits limits);

  // A ticket for a request holding `bytes`; ResourceExhausted (naming the bound) when
  // admitting it would pass either limit.
  absl::StatusOr<Ticket> Take(size_t bytes);

  size_t requests() const;
  size_t bytes() const;
  const RequestLimits& limits() const { return limits_; }

 private:
  struct Held {
    absl::Mutex mu;
    size_t requests ABSL_GUARDED_BY(mu) = 0;
    size_t bytes ABSL_GUARDED_BY(mu) = 0;
  };
  const RequestLimits limits_;
  // Shared with the tickets, so a ticket outliving the budget releases safely.
  const std::shared_ptr<Held> held_ = std::make_shared<Held>();
};

}  // namespace sy::expert_host
