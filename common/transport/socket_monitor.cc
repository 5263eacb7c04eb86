// SocketMonitor: dropped connections from ZeroMQ's socket monitor (see socket_monitor.h).
#include "common/transport/socket_monitor.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sy::transport {

absl::StatusOr<std::unique_ptr<zmq::socket_t>> OpenMonitor(zmq::context_t& context, zmq::socket_t& socket,
                                                            int events, const std::string& name, int queued_events) {
  const std::string address = absl::StrCat("inproc://sy-monitor-", name);
  if (zmq_socket_monitor(socket.handle(), address.c_str(), events) != 0) {
    return absl::InternalError(absl::StrCat("socket monitor ", name, ": ", zmq_strerror(zmq_errno())));
  }
  try {
    auto pair = std::make_unique<zmq::socket_t>(context, zmq::socket_type::pair);
    pair->set(zmq::sockopt::linger, 0);
    pair->set(zmq::sockopt::rcvhwm, queued_events);
    pair->connect(address);
    return pair;
  } catch (const zmq::error_t& e) {
    return absl::InternalError(absl::StrCat("socket monitor ", name, ": ", e.what()));
  }
}

std::optional<MonitorEvent> ReadMonitorEvent(zmq::socket_t& pair) {
  // An event is two frames: 6 bytes (uint16 event, uint32 value), then the endpoint.
  zmq::message_t head;
  if (!pair.recv(head, zmq::recv_flags::dontwait)) return std::nullopt;
  zmq::message_t endpoint;
  if (head.more()) (void)pair.recv(endpoint, zmq::recv_flags::none);  // sent together
  MonitorEvent event;
  if (head.size() >= sizeof(event.event)) std::memcpy(&event.event, head.data(), sizeof(event.event));
  if (head.size() >= sizeof(event.event) + sizeof(event.value)) {
    std::memcpy(&event.value, static_cast<const char*>(head.data()) + sizeof(event.event), sizeof(event.value));
  }
  event.endpoint = endpoint.to_string();
  return event;
}

SocketMonitor::SocketMonitor(zmq::context_t& context, Callback on_lost)
    : context_(context), on_lost_(std::move(on_lost)) {}

absl::Status SocketMonitor::Watch(zmq::socket_t& socket, const std::string& peer) {
  // Inproc names are per context; the name keeps two monitors of one context apart.
  absl::StatusOr<std::unique_ptr<zmq::socket_t>> events = OpenMonitor(
      context_, socket, ZMQ_EVENT_DISCONNECTED, absl::StrCat(reinterpret_cast<uintptr_t>(this), "-", next_id_++));
  if (!events.ok()) return absl::InternalError(absl::StrCat("for ", peer, ": ", events.status().message()));
  watched_.push_back({peer, *std::move(events)});
  return absl::OkStatus();
}

void SocketMonitor::Unwatch(zmq::socket_t& socket, const std::string& peer) {
  (void)zmq_socket_monitor(socket.handle(), nullptr, 0);
  watched_.erase(std::remove_if(watched_.begin(), watched_.end(), [&](const Watched& w) { return w.peer == peer; }),
                 watched_.end());
}

void SocketMonitor::AddFds(std::vector<int>& fds) const {
  for (const Watched& w : watched_) fds.push_back(w.events->get(zmq::sockopt::fd));
}

void SocketMonitor::ReadAll() {
  for (Watched& w : watched_) {
    while (std::optional<MonitorEvent> event = ReadMonitorEvent(*w.events)) {
      if (event->event == ZMQ_EVENT_DISCONNECTED) on_lost_({w.peer, event->endpoint});
    }
  }
}

}  // namespace sy::transport
