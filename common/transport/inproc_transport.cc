// InProcTransport: delivery straight into the receiver's bounded inbox.
#include "common/transport/inproc_transport.h"

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/transport/bounded_queue.h"

namespace sy::transport {

struct InProcNetwork::Node {
  Node(std::string id, QueueLimits limits)
      : node_id(std::move(id)), inbox(limits, [](const Message& m) { return m.ByteSize(); }) {}
  const std::string node_id;
  BoundedQueue<Message> inbox;
  absl::Mutex mu;
  std::map<std::string, std::string> connections ABSL_GUARDED_BY(mu);  // peer name -> endpoint
  std::vector<std::string> bound ABSL_GUARDED_BY(mu);                  // our endpoints
  std::atomic<uint64_t> sent{0}, received{0}, rejected{0}, unroutable{0};
};

class InProcTransport final : public Transport {
 public:
  InProcTransport(InProcNetwork* network, std::shared_ptr<InProcNetwork::Node> node)
      : network_(network), node_(std::move(node)) {}
  ~InProcTransport() override { Close(); }

  const std::string& node_id() const override { return node_->node_id; }

  absl::StatusOr<std::string> Bind(const std::string& endpoint) override {
    absl::MutexLock lock(&network_->mu_);
    if (closed_) return absl::FailedPreconditionError("transport closed");
    if (!network_->by_endpoint_.emplace(endpoint, node_).second) {
      return absl::AlreadyExistsError(absl::StrCat("endpoint in use: ", endpoint));
    }
    absl::MutexLock node_lock(&node_->mu);
    node_->bound.push_back(endpoint);
    return endpoint;
  }

  absl::Status Connect(const std::string& peer, const std::string& endpoint) override {
    absl::MutexLock lock(&node_->mu);
    if (!node_->connections.emplace(peer, endpoint).second) {
      return absl::AlreadyExistsError(absl::StrCat("already connected to ", peer));
    }
    return absl::OkStatus();
  }

  absl::Status Disconnect(const std::string& peer) override {
    absl::MutexLock lock(&node_->mu);
    if (node_->connections.erase(peer) == 0) return absl::NotFoundError(absl::StrCat("not connected to ", peer));
    return absl::OkStatus();
  }

  absl::Status Send(Message message, absl::Time deadline) override {
    std::shared_ptr<InProcNetwork::Node> target;
    Address from;
    {
      absl::MutexLock lock(&network_->mu_);
      if (closed_) return absl::FailedPreconditionError("transport closed");
      if (message.address.route == Route::kConnected) {
        std::string endpoint;
        {
          absl::MutexLock node_lock(&node_->mu);
          auto it = node_->connections.find(message.address.peer);
          if (it == node_->connections.end()) {
            ++node_->rejected;
            return absl::NotFoundError(absl::StrCat("not connected to ", message.address.peer));
          }
          endpoint = it->second;
        }
        auto bound = network_->by_endpoint_.find(endpoint);
        if (bound != network_->by_endpoint_.end()) target = bound->second;
        from = {node_->node_id, Route::kBound};
      } else {
        auto it = network_->by_node_id_.find(message.address.peer);
        if (it != network_->by_node_id_.end()) {
          target = it->second;
          from = {ConnectionNameLocked(*target), Route::kConnected};
        }
      }
    }
    // Like ZeroMQ: a message to a peer that is not there (yet, or any more) is lost.
    if (target == nullptr || from.peer.empty()) {
      ++node_->unroutable;
      return absl::OkStatus();
    }
    message.address = from;
    absl::Status pushed = target->inbox.Push(std::move(message), deadline);
    if (!pushed.ok()) {
      ++node_->rejected;
      return pushed;
    }
    ++node_->sent;
    ++target->received;
    return absl::OkStatus();
  }

  absl::StatusOr<Message> Receive(absl::Time deadline) override { return node_->inbox.Pop(deadline); }

  void Close() override {
    absl::MutexLock lock(&network_->mu_);
    if (closed_) return;
    closed_ = true;
    network_->by_node_id_.erase(node_->node_id);
    absl::MutexLock node_lock(&node_->mu);
    for (const std::string& endpoint : node_->bound) network_->by_endpoint_.erase(endpoint);
    node_->inbox.Close();
  }

  TransportStats stats() const override {
    TransportStats s;
    s.sent = node_->sent.load();
    s.received = node_->received.load();
    s.send_rejected = node_->rejected.load();
    s.unroutable = node_->unroutable.load();
    s.max_inbound_depth = node_->inbox.max_depth();
    absl::MutexLock lock(&node_->mu);
    s.connected_peers = node_->connections.size();
    return s;
  }

 private:
  // The name `target` gave us when it connected to one of our endpoints ("" if none).
  std::string ConnectionNameLocked(InProcNetwork::Node& target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(network_->mu_) {
    if (&target == node_.get()) return "";  // no loopback to ourselves
    // One node lock at a time: two nodes replying to each other would otherwise take
    // the pair in opposite orders (Abseil's deadlock detector aborts on that).
    std::vector<std::string> mine;
    {
      absl::MutexLock ours(&node_->mu);
      mine = node_->bound;
    }
    absl::MutexLock theirs(&target.mu);
    for (const auto& [name, endpoint] : target.connections) {
      if (std::find(mine.begin(), mine.end(), endpoint) != mine.end()) return name;
    }
    return "";
  }

  InProcNetwork* const network_;
  const std::shared_ptr<InProcNetwork::Node> node_;
  bool closed_ ABSL_GUARDED_BY(network_->mu_) = false;
};

InProcNetwork::InProcNetwork() = default;
InProcNetwork::~InProcNetwork() = default;

absl::StatusOr<std::unique_ptr<Transport>> InProcNetwork::CreateTransport(const std::string& node_id,
                                                                          QueueLimits receive_queue) {
  if (node_id.empty()) return absl::InvalidArgumentError("node_id is required");
  auto node = std::make_shared<Node>(node_id, receive_queue);
  absl::MutexLock lock(&mu_);
  if (!by_node_id_.emplace(node_id, node).second) {
    return absl::AlreadyExistsError(absl::StrCat("node id in use: ", node_id));
  }
  return std::unique_ptr<Transport>(std::make_unique<InProcTransport>(this, std::move(node)));
}

}  // namespace sy::transport
