// In-process Transport: the same interface as ZmqTransport, with messages moved
// between queues of one process (frames shared, never copied). For unit tests and
// single-process mode. Transports find each other through an InProcNetwork the
// owner creates and passes around (no global registry); endpoints are any strings.
// A send to a full receive queue waits until its deadline, then ResourceExhausted.
//
// Thread-safe, both the network and its transports. The network must outlive them.
//
//   InProcNetwork net;
//   auto server = net.CreateTransport("host-1");
//   (*server)->Bind("inproc://host-1");
//   auto client = net.CreateTransport("trainer-0");
//   (*client)->Connect("host-1", "inproc://host-1");
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/transport/transport.h"

namespace sy::transport {

class InProcNetwork {
 public:
  InProcNetwork();
  ~InProcNetwork();
  InProcNetwork(const InProcNetwork&) = delete;
  InProcNetwork& operator=(const InProcNetwork&) = delete;

  // `receive_queue` bounds the transport's inbound queue (backpressure on senders).
  absl::StatusOr<std::unique_ptr<Transport>> CreateTransport(const std::string& node_id,
                                                             QueueLimits receive_queue = {});

  struct Node;  // one transport's inbox and names (private to the implementation)

 private:
  friend class InProcTransport;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Node>> by_node_id_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Node>> by_endpoint_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sy::transport
