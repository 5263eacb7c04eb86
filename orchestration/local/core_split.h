// How sy-local divides the machine's cores between the processes it starts, so
// that their compute threads do not oversubscribe the CPU. Pure functions
// (AvailableCores reads the process's CPU affinity); thread-safe.
#pragma once

namespace sy::local {

// Cores this process may run on (its affinity mask), at least 1.
int AvailableCores();

// Compute threads for each of `processes` processes sharing `cores` cores:
// floor(cores / processes), at least 1 (never 0, even when processes > cores).
int ThreadsPerProcess(int cores, int processes);

}  // namespace sy::local
