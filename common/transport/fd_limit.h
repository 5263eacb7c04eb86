// Every peer connection is a file descriptor: a coordinator or host with the usual soft
// limit (often 1024) locks out new peers after about a thousand connections. A process
// that opens a ZeroMQ transport raises its soft RLIMIT_NOFILE to the hard limit once.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace sy::transport {

// Sets the soft open-file limit to the hard one and returns the soft limit now in
// force; the error of getrlimit/setrlimit otherwise (the limit is then unchanged).
absl::StatusOr<uint64_t> RaiseOpenFileLimit();

// RaiseOpenFileLimit on the first call in this process (logged), nothing after.
void RaiseOpenFileLimitOnce();

}  // namespace sy::transport
