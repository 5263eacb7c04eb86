// Every peer connection is a file descriptor: a coordinator or host with the usual soft
// limit (often 1024) locks out new peers after about a thousand connections. A process
// that opens a ZeroMQ transport raises its soft RLIMIT_NOFILE to the hard limit once.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"

namespace sy::transport {

// Sets the soft open-file limit to the hard one and returns the soft limit now in
// force; the error of getrlimit/setrlimit otherwise (the limit is then unchanged).
absl::StatusOr<uint64_t> RaiseOpenFileLimit();

// RaiseOpenFileLimit on the first call in this process (logged), nothing after.
void RaiseOpenFileLimitOnce();

// `wanted`, or 3/4 of the soft open-file limit in force when that is less: the
// connections a socket may accept, leaving descriptors for the process's own
// connections and files. `wanted` when the limit cannot be read.
size_t ConnectionsWithinOpenFileLimit(size_t wanted);

}  // namespace sy::transport
