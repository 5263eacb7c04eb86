// SocketMonitor: dropped connections from ZeroMQ's socket monitor (see socket_monitor.h).
#include "common/transport/socket_monitor.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sy::transport {

SocketMonitor::SocketMonitor(zmq::context_t& context, Callback on_lost)
    : context_(context), on_lost_(std::move(on_lost)) {}

absl::Status SocketMonitor::Watch(zmq::socket_t& socket, const std::string& peer) {
  // Inproc names are per context; the address keeps two monitors of one context apart.
  const std::string address = absl::StrCat("inproc://sy-monitor-", reinterpret_cast<uintptr_t>(this), "-", next_id_++);
  if (zmq_socket_monitor(socket.handle(), address.c_str(), ZMQ_EVENT_DISCONNECTED) != 0) {
    return absl::InternalError(absl::StrCat("socket monitor for ", peer, ": ", zmq_strerror(zmq_errno())));
  }
  try {
    auto events = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pair);
    events->set(zmq::sockopt::linger, 0);
    events->connect(address);
    watched_.push_back({peer, std::move(events)});
  } catch (const zmq::error_t& e) {
    return absl::InternalError(absl::StrCat("socket monitor for ", peer, ": ", e.what()));
  }
  return absl::OkStatus();
}

void SocketMonitor::Unwatch(zmq::socket_t& socket, const std::string& peer) {
  (void)zmq_socket_monitor(socket.handle(), nullptr, 0);
  watched_.erase(std::remove_if(watched_.begin(), watched_.end(), [&](const Watched& w) { return w.peer == peer; }),
                 watched_.end());
}

void SocketMonitor::AddPollItems(std::vector<zmq::pollitem_t>& items) const {
  for (const Watched& w : watched_) items.push_back({w.events->handle(), 0, ZMQ_POLLIN, 0});
}

void SocketMonitor::ReadAll() {
  for (Watched& w : watched_) {
    // An event is two frames: 6 bytes (uint16 event, uint32 value), then the endpoint.
    zmq::message_t head;
    while (w.events->recv(head, zmq::recv_flags::dontwait)) {
      zmq::message_t endpoint;
      if (head.more()) (void)w.events->recv(endpoint, zmq::recv_flags::none);  // sent together
      uint16_t event = 0;
      if (head.size() >= sizeof(event)) std::memcpy(&event, head.data(), sizeof(event));
      if (event == ZMQ_EVENT_DISCONNECTED) on_lost_({w.peer, endpoint.to_string()});
    }
  }
}

}  // namespace sy::transport
