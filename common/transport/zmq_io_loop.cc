// ZmqTransport implementation, the I/O thread's side (see zmq_transport_impl.h): its loop
// over commands, queued sends, readable sockets and one poll(2), and the socket moves
// under the socket lock: flushing pending sends, reading whole admitted messages.
#include <utility>

#include "common/transport/zmq_transport_impl.h"

namespace sy::transport {

void ZmqTransportImpl::TakeOutbound() {
  {
    absl::MutexLock lock(&mu_);
    taking_.swap(outbound_);
  }
  for (Message& message : taking_) Enqueue(std::move(message));
  taking_.clear();
}

void ZmqTransportImpl::IoLoop() {
  io_thread_id_ = std::this_thread::get_id();
  IoPollSet& poll = poll_;
  std::vector<int> helper_fds;  // the ZAP, monitor and connection-cap sockets' ZMQ_FDs
  bool look_at_all = true;
  while (true) {
    if (poll.Fired(wake_.fd())) {
      wake_.Drain();
      look_at_all = true;
    }
    bool stopping = false, router_blocked = false, work_left = false, reading = false;
    {
      absl::MutexLock io(&io_mu_);
      {
        absl::MutexLock lock(&mu_);
        running_.swap(commands_);
        stopping = closed_;
      }
      for (auto& command : running_) command();
      running_.clear();
      TakeOutbound();
      // Read by a waiting caller (ReceiveHere) before anything read below: order is kept.
      for (Message& message : handed_over_) to_deliver_.push_back(std::move(message));
      handed_over_.clear();
      if (stopping) {
        CloseSockets();
        return;
      }
      const uint64_t handled = sent_ + unroutable_;
      router_blocked = !FlushAll();
      look_at_all |= sent_ + unroutable_ != handled;  // a send may take a socket's input signal
      reading = Reading();
      auto due = [&](const Endpoint& e) { return look_at_all || poll.Fired(e.fd) || !e.pending.empty(); };
      if (router_.socket != nullptr && due(router_)) work_left |= LookAt(router_, /*is_router=*/true, "", reading);
      for (auto& [peer, endpoint] : dealers_) {
        if (due(endpoint)) work_left |= LookAt(endpoint, /*is_router=*/false, peer, reading);
      }
      reading = Reading();  // reading may have filled the receive queue: then wait briefly
      poll.Clear();
      poll.Add(wake_.fd());
      if (router_.socket != nullptr) poll.Add(router_.fd);
      for (auto& [peer, endpoint] : dealers_) poll.Add(endpoint.fd);
    }
    const bool helpers_due = look_at_all || poll.AnyFired(helper_fds);
    poll.ForgetFired();  // from here on: the sockets this thread sends on (SendNow)
    if (helpers_due) helpers_.ReadAll(helper_fds);  // a monitor's callback may send
    // A send that queued or saw input, or a socket made or closed, wakes the loop again.
    DeliverReceived();
    look_at_all = work_left;
    if (work_left || poll.AnyFired()) continue;
    for (int fd : helper_fds) poll.Add(fd);
    poll.Wait(router_blocked || !reading ? 2 : -1);
    look_at_all |= router_blocked || !reading;  // the short wait is a retry timer
  }
}

bool ZmqTransportImpl::LookAt(Endpoint& endpoint, bool is_router, const std::string& peer, bool reading) {
  bool work = reading && ReadAll(endpoint, is_router, peer);
  if (!endpoint.pending.empty() || !reading) {
    const int events = endpoint.socket->get(zmq::sockopt::events);
    work |= (reading && (events & ZMQ_POLLIN)) || (!is_router && !endpoint.pending.empty() && (events & ZMQ_POLLOUT));
  }
  return work;
}

void ZmqTransportImpl::CloseSockets() {
  handed_over_.clear();
  helpers_ = HelperSockets();
  router_ = Endpoint();
  dealers_.clear();
}

void ZmqTransportImpl::DeliverReceived() {
  delivering_.swap(to_deliver_);
  for (Message& message : delivering_) {
    ++received_;
    deliver_(std::move(message));
  }
  delivering_.clear();
}

void ZmqTransportImpl::Enqueue(Message message) {
  Endpoint* endpoint = EndpointFor(message.address);
  if (endpoint == nullptr) return Unroutable(message);
  endpoint->pending.push_back(std::move(message));
}

void ZmqTransportImpl::Sent(const Message& message) {
  ++sent_;
  budget_.Release(message.ByteSize());
}

void ZmqTransportImpl::Unroutable(const Message& message) {
  ++unroutable_;
  if (unroutable_counter_ != nullptr) unroutable_counter_->Increment();
  budget_.Release(message.ByteSize());
}

bool ZmqTransportImpl::FlushAll() {
  bool router_flushed = true;
  if (router_.socket != nullptr) router_flushed = Flush(router_, /*is_router=*/true);
  for (auto& [peer, endpoint] : dealers_) Flush(endpoint, /*is_router=*/false);
  return router_flushed;
}

bool ZmqTransportImpl::Flush(Endpoint& endpoint, bool is_router) {
  while (!endpoint.pending.empty()) {
    if (SendOne(endpoint, endpoint.pending.front(), is_router) == SendOutcome::kWouldBlock) return false;
    endpoint.pending.pop_front();
  }
  return true;
}

SendOutcome ZmqTransportImpl::SendOne(Endpoint& endpoint, const Message& message, bool is_router) {
  const SendOutcome outcome = SendWhole(*endpoint.socket, message, is_router);
  if (outcome == SendOutcome::kSent) Sent(message);
  if (outcome == SendOutcome::kUnroutable) Unroutable(message);
  return outcome;
}

bool ZmqTransportImpl::ReadAll(Endpoint& endpoint, bool is_router, const std::string& peer) {
  for (int read = 0; Reading(); ++read) {
    if (deliver_ != nullptr && read == kDeliveryBatch) return true;
    Message message;
    if (!ReadAdmitted(endpoint, is_router, peer, &message)) return false;
    if (deliver_ != nullptr) {
      to_deliver_.push_back(std::move(message));
    } else {
      stalled_ = std::move(message);
    }
  }
  return false;
}

bool ZmqTransportImpl::ReadAdmitted(Endpoint& endpoint, bool is_router, const std::string& peer, Message* message) {
  while (ReceiveWhole(*endpoint.socket, &parts_)) {
    switch (MessageFromParts(parts_, endpoint, is_router, peer, options_, helpers_.zap != nullptr, message)) {
      case Admission::kAdmitted:
        return true;
      case Admission::kEmpty:
        break;
      case Admission::kUnauthenticated:
        ++dropped_unauthenticated_;
        break;
      case Admission::kOversize:
        ++dropped_oversize_;  // could never be queued
        break;
    }
  }
  return false;
}

bool ZmqTransportImpl::DeliverStalled() {
  if (!stalled_.has_value()) return true;
  if (!inbound_.TryPush(*stalled_)) return false;
  stalled_.reset();
  ++received_;
  return true;
}

}  // namespace sy::transport
