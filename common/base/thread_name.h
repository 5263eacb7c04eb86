// Names the calling thread for the kernel (its comm: what `top -H`, `ps -L`, perf and
// /proc/PID/task/TID/comm show), so a profile of a node says which of its threads spent
// the time: the transport's I/O loop, the RPC timers, the actor runtime, the compute pool.
// The kernel keeps at most 15 characters; a longer name is cut there.
#pragma once

#include <pthread.h>

#include <string>

#include "absl/strings/string_view.h"

namespace sy::base {

inline void NameThisThread(absl::string_view name) {
  const std::string cut(name.substr(0, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace sy::base
