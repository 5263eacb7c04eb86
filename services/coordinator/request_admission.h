// RequestAdmission: the coordinator's door hands requests to its actors, whose
// mailboxes have no bound of their own; this bounds the bytes of the requests handed
// over and not yet handled. A request that does not fit waits (the door's thread, so
// the transport's queues fill and senders are slowed) until earlier ones are handled,
// at most until its deadline, then is refused (ResourceExhausted). One request always
// fits when nothing else is admitted.
// Thread-safe.
#pragma once

#include <cstddef>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sy::coordinator {

class RequestAdmission {
 public:
  // Holds the admitted bytes until destroyed (when the actor's message is).
  using Ticket = std::shared_ptr<void>;

  explicit RequestAdmission(size_t max_bytes);

  // Admits `bytes`, waiting until they fit, at most until `deadline`.
  absl::StatusOr<Ticket> Admit(size_t bytes, absl::Time deadline);

 private:
  struct State {
    absl::Mutex mu;
    size_t admitted ABSL_GUARDED_BY(mu) = 0;
  };
  const size_t max_bytes_;
  std::shared_ptr<State> state_ = std::make_shared<State>();  // tickets may outlive this object
};

}  // namespace sy::coordinator
