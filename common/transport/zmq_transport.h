// ZeroMQ implementation of Transport. Bind() opens a ROUTER socket (servers); Connect()
// opens one DEALER socket per peer, whose routing id is our node id and a random suffix
// ("trainer-0@5f0c9a1e2b3d4c6f", fresh for each connection), so the peer's ROUTER sees who
// we are and a new connection never collides with an old one. The sockets sit under one
// socket lock. A dedicated I/O thread holds it while it works and lets go while it waits
// in poll(2) on the sockets' ZMQ_FDs plus an eventfd that other threads write to wake it;
// after a wait it looks only at the sockets whose descriptor fired (io_poll_set.h). Send
// writes the message to the socket from the calling thread when the lock is free and
// nothing is queued ahead of it for that peer; otherwise it hands the message to the I/O
// thread through a queue bounded in messages and bytes. Received messages go to another
// bounded queue for Receive, or, after DeliverOnIoThread, straight to the receiver on the
// I/O thread. A thread waiting for a reply from a connected peer (a blocking
// RpcNode::Call) may read that peer's DEALER itself under the socket lock (ReceiveHere),
// waking with the I/O thread on the socket's descriptor: it takes its reply without a
// hand-off and passes what else it read to the I/O thread, in order. When the receive
// queue is full the I/O thread stops reading, so ZeroMQ's high-water marks and TCP push
// back on the sender. Data frames go to ZeroMQ without copying (Frame::ToZmq). The
// implementation is in zmq_transport_impl.h, zmq_transport.cc and zmq_io_loop.cc.
//
// Thread-safe. Optional CurveZMQ: with keys set, the ROUTER is a CURVE server and
// every DEALER a CURVE client (encryption, server authentication, and client
// authentication against an allow-list through a ZAP handler on the I/O thread).
//
//   ZmqOptions options; options.node_id = "host-1";
//   auto server = ZmqTransport::Create(options);
//   auto endpoint = (*server)->Bind("tcp://127.0.0.1:*");   // "tcp://127.0.0.1:41234"
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/metrics/registry.h"
#include "common/transport/peer_allowlist.h"
#include "common/transport/socket_monitor.h"
#include "common/transport/transport.h"

namespace sy::transport {

struct CurveKeys {
  // Z85-encoded 40-character keys (zmq_curve_keypair). All empty = no encryption.
  std::string server_public;  // DEALERs: the key of the servers they connect to
  std::string server_secret;  // ROUTER: our server secret key (makes Bind a CURVE server)
  std::string client_public;  // DEALERs: our client key pair
  std::string client_secret;
  // ROUTER: client public keys allowed to connect (a ZAP handler checks them during the
  // handshake); empty = any client that knows the server key. Received messages carry
  // the client's key in Message::client_key either way, e.g. to require the admin key.
  std::vector<std::string> allowed_clients;
  // The cluster allowlist (peer_allowlist.h): with it, the ROUTER admits only listed client
  // keys, each DEALER takes its server key from the entry of the peer's node name (the
  // peer name up to '@') unless server_public is set, and every received message carries
  // the sender's role and name (Message::peer_role/peer_name). A ROUTER message whose
  // routing id is not the key's node name (or "name@...") is dropped. Our own pair:
  // server_secret and client_public/client_secret.
  std::shared_ptr<PeerAllowlist> allowlist;
};

struct ZmqOptions {
  std::string node_id;          // required: our name (DEALER routing ids are "node_id@random")
  QueueLimits send_queue;       // Send waits (then ResourceExhausted) beyond these
  QueueLimits receive_queue;    // the I/O thread stops reading beyond these
  int send_hwm = 1000;          // ZMQ_SNDHWM per socket (messages)
  int receive_hwm = 1000;       // ZMQ_RCVHWM per socket (messages)
  int64_t max_frame_bytes = -1; // ZMQ_MAXMSGSIZE: larger frames drop the connection; -1 = off
  CurveKeys curve;
  // Connections the bound socket holds at most (connection_cap.h); more are shut down
  // and counted in sy_refused_total{reason="connections"}. 0: no cap.
  size_t max_connections = 2048;
  metrics::Registry* metrics = nullptr;  // optional: transport counters, labelled by node
  // Optional: called on the I/O thread when a connection opened by Connect drops (the
  // peer process died or closed it; see socket_monitor.h). Must return quickly.
  SocketMonitor::Callback on_connection_lost;
};

class ZmqTransport : public Transport {
 public:
  static absl::StatusOr<std::unique_ptr<ZmqTransport>> Create(ZmqOptions options);
};

}  // namespace sy::transport
