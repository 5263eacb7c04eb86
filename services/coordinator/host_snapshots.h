// How many checkpoint snapshots an expert host keeps per actor: the state at its
// last kHostSnapshotsKept multiples of --checkpoint_every. Shared by the hosts
// (which keep them) and the coordinator (which asks only for steps still kept),
// so a checkpoint asked for late, when the hosts ran ahead, still finds its state.
#pragma once

#include <cstdint>

namespace sy::coordinator {

inline constexpr uint64_t kHostSnapshotsKept = 4;

}  // namespace sy::coordinator
