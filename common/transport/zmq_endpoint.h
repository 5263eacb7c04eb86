// One socket of ZmqTransport and the wire moves on it: a whole multipart message sent or
// received without waiting. Split from zmq_transport.cc so the transport's threading
// (which thread may touch a socket when) stays apart from how a Message maps to frames:
// [routing id,] header, data frames.
//
// Not synchronised: ZmqTransport touches an Endpoint only under its socket lock.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "absl/status/statusor.h"
#include "common/transport/connection_cap.h"
#include "common/transport/message.h"
#include "common/transport/peer_allowlist.h"
#include "common/transport/socket_monitor.h"
#include "common/transport/zap_handler.h"
#include "common/transport/zmq_transport.h"

namespace sy::transport {

struct Endpoint {
  std::unique_ptr<zmq::socket_t> socket;
  int fd = -1;                         // ZMQ_FD: readable when the socket's state may have changed
  std::deque<Message> pending;         // waiting for the socket to become writable, in order
  std::optional<PeerIdentity> server;  // a DEALER's: the allowlisted node it connected to
  int readers = 0;                     // a DEALER's: threads waiting on it (ZmqTransport::ReceiveHere)
};

// Takes `socket` and reads its ZMQ_FD.
Endpoint MakeEndpoint(std::unique_ptr<zmq::socket_t> socket);

enum class SendOutcome {
  kSent,        // the whole message is ZeroMQ's now
  kWouldBlock,  // nothing was sent (high-water mark): try again when the socket is writable
  kUnroutable,  // the ROUTER has no such peer connected (ROUTER_MANDATORY), or the socket failed
};

// Sends `message` whole (a ROUTER prefixes the peer's routing id) without waiting; data
// frames go without copying (Frame::ToZmq).
SendOutcome SendWhole(zmq::socket_t& socket, const Message& message, bool is_router);

// Reads one whole multipart message without waiting into `parts` (cleared first); false
// when none is waiting.
bool ReceiveWhole(zmq::socket_t& socket, std::vector<zmq::message_t>* parts);

enum class Admission {
  kAdmitted,
  kEmpty,            // nothing past the routing id
  kUnauthenticated,  // with an allowlist: the key or the routing id does not match a listed node
  kOversize,         // larger than the receive queue could ever hold
};

// Builds `out` from the received `parts` of `endpoint` (a ROUTER's start with the routing
// id; a DEALER's come from `peer`): the sender's address, over CURVE (`curve_server`) its
// key, with an allowlist its identity (a ROUTER message whose routing id is not the
// authenticated node's name, or "name@...", is unauthenticated; options.curve.allowlist).
// Takes the parts' bytes without copying.
Admission MessageFromParts(std::vector<zmq::message_t>& parts, const Endpoint& endpoint, bool is_router,
                           const std::string& peer, const ZmqOptions& options, bool curve_server, Message* out);

// The sockets beside the ROUTER and DEALERs that the I/O thread reads: the ZAP handler
// (with a CURVE server), the monitor of DEALER connections (with
// options.on_connection_lost, once a DEALER exists) and the ROUTER's connection cap (with
// options.max_connections, once bound).
struct HelperSockets {
  std::unique_ptr<ZapHandler> zap;
  std::unique_ptr<SocketMonitor> monitor;
  std::unique_ptr<ConnectionCap> cap;

  // Reads each until it would block (which re-arms its ZMQ_FD) and lists the ZMQ_FDs in `fds`.
  void ReadAll(std::vector<int>& fds);
};

// InvalidArgument unless every CURVE key given is a 40-character Z85 string and a client
// has its own pair plus a way to the server's key (server_public or the allowlist).
absl::Status CheckCurveKeys(const CurveKeys& curve);

// A ROUTER bound to `address` with `options`' high-water marks and frame cap, a CURVE
// server when options.curve.server_secret is set (`zap`, the handler checking clients, is
// made on first use), holding at most options.max_connections connections (`cap`, set to
// the watcher, or null without a cap). InvalidArgument when ZeroMQ refuses.
absl::StatusOr<Endpoint> BindRouter(zmq::context_t& context, const ZmqOptions& options, const std::string& address,
                                    std::unique_ptr<ZapHandler>* zap, std::unique_ptr<ConnectionCap>* cap);

// A DEALER to `peer` at `address` sending as options.node_id, a CURVE client when the
// options name the peer's server key (server_public, or its node's allowlist entry: NotFound
// when there is none), watched by `monitor` (made on first use) when
// options.on_connection_lost is set. InvalidArgument when ZeroMQ refuses.
absl::StatusOr<Endpoint> ConnectDealer(zmq::context_t& context, const ZmqOptions& options, const std::string& peer,
                                       const std::string& address, std::unique_ptr<SocketMonitor>* monitor);

// Whether the socket is readable / writable now (ZMQ_EVENTS). Asking also consumes the
// ZMQ_FD signal, as every operation on the socket may: after touching a socket outside
// the I/O thread's loop, check this and wake the loop when it shows input.
bool Readable(zmq::socket_t& socket);
bool Writable(zmq::socket_t& socket);

}  // namespace sy::transport
