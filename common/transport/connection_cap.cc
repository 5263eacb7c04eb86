// Holding a bound socket to a number of connections (see connection_cap.h).
#include "common/transport/connection_cap.h"

#include <sys/socket.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/transport/fd_limit.h"
#include "common/transport/refusals.h"
#include "common/transport/socket_monitor.h"

namespace sy::transport {
namespace {

constexpr int kQueuedEvents = 64 << 10;

}  // namespace

absl::StatusOr<std::unique_ptr<ConnectionCap>> ConnectionCap::Watch(zmq::context_t& context, zmq::socket_t& socket,
                                                                    size_t max_connections,
                                                                    metrics::Registry* registry) {
  if (max_connections == 0) return std::unique_ptr<ConnectionCap>();
  const size_t cap = ConnectionsWithinOpenFileLimit(max_connections);
  if (cap < max_connections) {
    SY_LOG(WARNING) << "at most " << cap << " connections, not " << max_connections
                    << ": the open-file limit leaves no room for more";
  }
  absl::StatusOr<std::unique_ptr<zmq::socket_t>> events =
      OpenMonitor(context, socket, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED,
                  absl::StrCat("cap-", reinterpret_cast<uintptr_t>(&socket)), kQueuedEvents);
  if (!events.ok()) return events.status();
  return std::unique_ptr<ConnectionCap>(new ConnectionCap(*std::move(events), cap, registry));
}

void ConnectionCap::Accepted(int fd) {
  Closed(fd);  // an entry still there lost its DISCONNECTED event: the descriptor is a new connection now
  const bool fits = admitted_ < max_connections_;
  open_[fd] = fits ? State::kAdmitted : State::kToRefuse;
  if (fits) ++admitted_;
}

void ConnectionCap::Closed(int fd) {
  auto it = open_.find(fd);
  if (it == open_.end()) return;
  if (it->second == State::kAdmitted) --admitted_;
  open_.erase(it);
}

void ConnectionCap::ReadAll() {
  bool any = false;
  while (std::optional<MonitorEvent> event = ReadMonitorEvent(*events_)) {
    any = true;
    const int fd = static_cast<int>(event->value);
    if (event->event == ZMQ_EVENT_ACCEPTED) Accepted(fd);
    if (event->event == ZMQ_EVENT_DISCONNECTED) Closed(fd);
  }
  if (!any) return;
  for (auto& [fd, state] : open_) {
    if (state != State::kToRefuse) continue;
    state = State::kRefused;  // until ZeroMQ reports it closed
    ++refused_;
    const bool shut = ::shutdown(fd, SHUT_RDWR) == 0;
    (void)Refuse(registry_, "connections",
                 absl::ResourceExhaustedError(absl::StrCat(
                     "a connection beyond the ", max_connections_, " this socket holds at most",
                     shut ? " was shut down" : " was already gone")));
  }
}

}  // namespace sy::transport
