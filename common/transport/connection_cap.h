// ConnectionCap: a bound socket accepts at most a fixed number of connections. Without
// it anyone who can reach the port (anyone at all under --insecure) opens raw TCP
// connections until the process runs out of file descriptors, and then no peer can
// connect to it, nor it to them. ZeroMQ has no such limit, so this watches the ROUTER's
// monitor: each accepted connection is counted (ZMQ_EVENT_ACCEPTED, whose value is its
// file descriptor) until it drops (ZMQ_EVENT_DISCONNECTED); one accepted beyond the cap
// is shut down (shutdown(2) on its descriptor: ZeroMQ then closes it as a dropped
// connection) and refused through transport::Refuse (reason "connections"). Peers that
// authenticate are not told apart from others: the cap bounds how many connections the
// process holds, whoever opens them.
//
// The events are read in batches and a connection is shut down only when the batch that
// accepted it does not also report it closed, so a descriptor ZeroMQ already reused for
// a later connection is not touched on the strength of an old event. An event ZeroMQ
// dropped (its queue holds 64Ki unread events) leaves a stale count until the
// descriptor is accepted again.
//
// Not thread-safe: used by the thread that owns the socket (ZmqTransport's I/O thread),
// which polls events() and calls ReadAll.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>

#include <zmq.hpp>

#include "absl/status/statusor.h"
#include "common/metrics/registry.h"

namespace sy::transport {

class ConnectionCap {
 public:
  // Watches `socket` (a ROUTER, before its bind) and holds it to `max_connections`,
  // lowered to 3/4 of the open-file limit when that is less (the rest is for the
  // process's own connections and files). `registry` (optional) counts refusals.
  // Null when `max_connections` is 0 (no cap).
  static absl::StatusOr<std::unique_ptr<ConnectionCap>> Watch(zmq::context_t& context, zmq::socket_t& socket,
                                                              size_t max_connections, metrics::Registry* registry);

  // The PAIR socket: poll its ZMQ_FD (ReadAll leaves it armed).
  zmq::socket_t& events() { return *events_; }
  // Reads every queued event; shuts down the connections accepted beyond the cap.
  void ReadAll();

  size_t max_connections() const { return max_connections_; }
  size_t admitted() const { return admitted_; }  // connections open and counted now
  uint64_t refused() const { return refused_; }  // connections shut down so far

 private:
  enum class State { kAdmitted, kToRefuse, kRefused };

  ConnectionCap(std::unique_ptr<zmq::socket_t> events, size_t max_connections, metrics::Registry* registry)
      : events_(std::move(events)), max_connections_(max_connections), registry_(registry) {}
  void Accepted(int fd);
  void Closed(int fd);

  std::unique_ptr<zmq::socket_t> events_;
  const size_t max_connections_;
  metrics::Registry* const registry_;
  std::map<int, State> open_;  // by file descriptor: every connection accepted and not reported closed
  size_t admitted_ = 0;        // entries of open_ in kAdmitted
  uint64_t refused_ = 0;
};

}  // namespace sy::transport
