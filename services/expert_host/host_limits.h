// The bounds that keep an expert host's memory independent of what its peers send:
// how far ahead of the applied version a request may name a step, how many requests
// one actor parks and for how long, what all requests waiting for actors may hold,
// and how many checkpoint restores may be assembled at once. Plain values; the
// defaults fit the models this project trains; HostService raises the request
// budget for a model whose largest request needs more.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"

namespace sy::expert_host {

// How many requests one actor parks at most, and for how long at most.
struct ParkingLimits {
  size_t max_parked = 256;
  absl::Duration max_wait = absl::Minutes(2);
};

// What the requests handed to the host's actors (in mailboxes or parked) hold at most.
struct RequestLimits {
  size_t max_requests = 4096;
  size_t max_bytes = 8u << 20;
};

struct HostLimits {
  // A request naming step S is served (or parked) only while S <= applied + step_window;
  // a step further ahead is refused with OutOfRange. Trainers name at most the step
  // after the next one of a host that is one apply behind; the window leaves room.
  uint64_t step_window = 4;
  ParkingLimits parking;
  RequestLimits requests;
  // Checkpoint restores assembled chunk by chunk at the same time; one that got no chunk
  // for restore_idle no longer counts (an abandoned restore cannot block later ones).
  size_t max_concurrent_restores = 4;
  absl::Duration restore_idle = absl::Minutes(1);
};

}  // namespace sy::expert_host
