// `syctl top`: a live terminal view of a cluster, the status summary, the hosts and the
// experts with their load, cleared and redrawn every second from the admin API (the
// same calls and tables as `syctl status`, `hosts` and `experts`). q or Ctrl-C quits
// when stdin is a terminal (read unbuffered, without echo, restored on the way out);
// --iterations=N stops after N refreshes. A refresh that fails shows the error in
// its frame and the view goes on. Thread-compatible: one view per terminal.
#pragma once

#include <ostream>

#include "services/syctl/syctl.h"

namespace sy::syctl {

// Runs the view of `inv` (command "top"). Returns kExitUsage for bad arguments (written
// to `err`), otherwise the exit code of the last refresh (kExitOk when it worked).
int RunTop(const Invocation& inv, std::ostream& out, std::ostream& err);

}  // namespace sy::syctl
