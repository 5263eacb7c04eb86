// SocketMonitor: notices that a connection a process opened has dropped, so a peer
// process that died (the kernel closes its TCP connections) is seen at once instead of
// after a heartbeat timeout. ZeroMQ's zmq_socket_monitor publishes a socket's events on
// an inproc PAIR; this reads ZMQ_EVENT_DISCONNECTED from it. A stopped (SIGSTOP) or
// cut-off peer keeps its connection, or loses it silently: no event, so heartbeats
// still cover those.
//
// Not thread-safe: used by the one thread that owns the watched sockets (ZmqTransport's
// I/O thread), which polls the monitor's PAIR sockets with its own (AddFds) and
// calls ReadAll. Bounded: one PAIR per watched socket, read without blocking, and
// ZeroMQ drops events beyond its high-water mark. Destroy it before the context; the
// watched sockets may outlive it (their events then go nowhere).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sy::transport {

// A connection opened by Connect(peer, endpoint) dropped.
struct ConnectionLost {
  std::string peer;
  std::string endpoint;  // as ZeroMQ reports it, e.g. "tcp://127.0.0.1:41234"
};

// One event of a socket's monitor.
struct MonitorEvent {
  uint16_t event = 0;    // ZMQ_EVENT_*
  uint32_t value = 0;    // for ACCEPTED and DISCONNECTED: the connection's file descriptor
  std::string endpoint;  // as ZeroMQ reports it
};

// Publishes `events` (a ZMQ_EVENT_* mask) of `socket` and returns the PAIR socket that
// reads them; `name` tells monitors apart (unique within the context). The PAIR holds up
// to `queued_events` unread events (ZeroMQ drops those beyond).
absl::StatusOr<std::unique_ptr<zmq::socket_t>> OpenMonitor(zmq::context_t& context, zmq::socket_t& socket,
                                                            int events, const std::string& name,
                                                            int queued_events = 1000);
// The next event queued on a monitor's PAIR, without blocking (nullopt: none).
std::optional<MonitorEvent> ReadMonitorEvent(zmq::socket_t& pair);

class SocketMonitor {
 public:
  using Callback = std::function<void(const ConnectionLost&)>;

  SocketMonitor(zmq::context_t& context, Callback on_lost);
  SocketMonitor(const SocketMonitor&) = delete;
  SocketMonitor& operator=(const SocketMonitor&) = delete;

  // Watches `socket` (a connecting socket, best before its connect()) for `peer`.
  absl::Status Watch(zmq::socket_t& socket, const std::string& peer);
  // Stops watching `peer`'s socket (before it is closed, so its closing is not reported).
  void Unwatch(zmq::socket_t& socket, const std::string& peer);
  // The PAIR sockets' ZMQ_FDs, to poll for input (ReadAll re-arms them).
  void AddFds(std::vector<int>& fds) const;
  // Reads every queued event, calling the callback for each dropped connection.
  void ReadAll();

 private:
  struct Watched {
    std::string peer;
    std::unique_ptr<zmq::socket_t> events;  // PAIR connected to the socket's monitor
  };

  zmq::context_t& context_;
  Callback on_lost_;
  uint64_t next_id_ = 0;
  std::vector<Watched> watched_;
};

}  // namespace sy::transport
