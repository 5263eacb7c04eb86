// Whole-message sends and receives on one ZeroMQ socket (see zmq_endpoint.h).
#include "common/transport/zmq_endpoint.h"

#include <cstdint>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sy::transport {
namespace {

void ConfigureSocket(zmq::socket_t& socket, const ZmqOptions& options) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, options.send_hwm);
  socket.set(zmq::sockopt::rcvhwm, options.receive_hwm);
  socket.set(zmq::sockopt::maxmsgsize, options.max_frame_bytes);
}

// The CURVE server key for a DEALER to `peer`: the single server_public when set (a client
// of one server), else the allowlist's key of the peer's node (its identity goes to
// `server`), else "" (plain TCP). NotFound when the allowlist does not name the node.
absl::StatusOr<std::string> ServerKeyOf(const CurveKeys& curve, const std::string& peer,
                                        std::optional<PeerIdentity>* server) {
  if (!curve.server_public.empty()) return curve.server_public;
  if (curve.allowlist == nullptr) return std::string();
  const std::string node = NodeOfPeer(peer);
  std::optional<std::string> key = curve.allowlist->KeyOf(node);
  if (!key.has_value()) {
    return absl::NotFoundError(absl::StrCat("no key for node '", node, "' in the cluster allowlist (add it with "
                                            "`syctl keygen --cluster DIR --add ROLE ", node, "`)"));
  }
  *server = curve.allowlist->Find(*key);
  return *key;
}

// "NODE@" and 16 random hex digits: a fresh routing id for each connection. It never
// meets a stale connection of the same node that the server still holds (a half-open one
// after a partition, a close it has not processed yet), and no other key can guess it to
// take it over (ZMQ_ROUTER_HANDOVER). The server reads the node from it (NodeOfPeer).
std::string ConnectionRoutingId(const std::string& node_id) {
  std::random_device random;
  const uint64_t nonce = (static_cast<uint64_t>(random()) << 32) | random();
  return absl::StrCat(node_id, "@", absl::Hex(nonce, absl::kZeroPad16));
}

}  // namespace

Endpoint MakeEndpoint(std::unique_ptr<zmq::socket_t> socket) {
  Endpoint endpoint;
  endpoint.fd = socket->get(zmq::sockopt::fd);
  endpoint.socket = std::move(socket);
  return endpoint;
}

SendOutcome SendWhole(zmq::socket_t& socket, const Message& message, bool is_router) {
  try {
    const zmq::send_flags header_more = message.data.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore;
    if (is_router) {
      zmq::message_t identity(message.address.peer.data(), message.address.peer.size());
      if (!socket.send(identity, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return SendOutcome::kWouldBlock;
      }
      // Once the first part is accepted the rest of the message is accepted too.
      socket.send(message.header.ToZmq(), header_more);
    } else if (!socket.send(message.header.ToZmq(), header_more | zmq::send_flags::dontwait)) {
      return SendOutcome::kWouldBlock;
    }
    for (size_t i = 0; i < message.data.size(); ++i) {
      const bool last = i + 1 == message.data.size();
      socket.send(message.data[i].ToZmq(), last ? zmq::send_flags::none : zmq::send_flags::sndmore);
    }
    return SendOutcome::kSent;
  } catch (const zmq::error_t&) {
    // EHOSTUNREACH (ROUTER_MANDATORY): the peer is not connected to us.
    return SendOutcome::kUnroutable;
  }
}

bool ReceiveWhole(zmq::socket_t& socket, std::vector<zmq::message_t>* parts) {
  parts->clear();
  zmq::message_t part;
  if (!socket.recv(part, zmq::recv_flags::dontwait)) return false;
  parts->push_back(std::move(part));
  while (parts->back().more()) {
    zmq::message_t next;
    (void)socket.recv(next, zmq::recv_flags::none);  // the rest of a message is already here
    parts->push_back(std::move(next));
  }
  return true;
}

Admission MessageFromParts(std::vector<zmq::message_t>& parts, const Endpoint& endpoint, bool is_router,
                           const std::string& peer, const ZmqOptions& options, bool curve_server, Message* out) {
  PeerAllowlist* const allowlist = options.curve.allowlist.get();
  size_t first = 0;
  if (is_router) {
    out->address = {parts[0].to_string(), Route::kBound};
    first = 1;
  } else {
    out->address = {peer, Route::kConnected};
  }
  if (parts.size() <= first) return Admission::kEmpty;
  if (is_router && curve_server) {
    try {
      out->client_key = parts[first].gets("User-Id");
    } catch (const zmq::error_t&) {
      // no CURVE metadata on this message
    }
  }
  if (allowlist != nullptr) {
    std::optional<PeerIdentity> who = endpoint.server;
    if (is_router) {
      who = allowlist->Find(out->client_key);
      if (who.has_value() && NodeOfPeer(out->address.peer) != who->name) who.reset();
    }
    if (!who.has_value()) return Admission::kUnauthenticated;
    out->peer_role = who->role;
    out->peer_name = who->name;
  }
  out->header = Frame::FromZmq(std::move(parts[first]));
  for (size_t i = first + 1; i < parts.size(); ++i) out->data.push_back(Frame::FromZmq(std::move(parts[i])));
  return out->ByteSize() <= options.receive_queue.max_bytes ? Admission::kAdmitted : Admission::kOversize;
}

absl::Status CheckCurveKeys(const CurveKeys& curve) {
  const bool curve_client = !curve.server_public.empty() || curve.allowlist != nullptr;
  if (curve_client && (curve.client_public.size() != 40 || curve.client_secret.size() != 40 ||
                       (curve.allowlist == nullptr && curve.server_public.size() != 40))) {
    return absl::InvalidArgumentError("CURVE client keys must be 40-character Z85 strings");
  }
  for (const std::string& key : curve.allowed_clients) {
    if (key.size() != 40) return absl::InvalidArgumentError("allowed CURVE client keys must be 40-character Z85 strings");
  }
  if (!curve.server_secret.empty() && curve.server_secret.size() != 40) {
    return absl::InvalidArgumentError("CURVE server secret must be a 40-character Z85 string");
  }
  return absl::OkStatus();
}

absl::StatusOr<Endpoint> BindRouter(zmq::context_t& context, const ZmqOptions& options, const std::string& address,
                                    std::unique_ptr<ZapHandler>* zap, std::unique_ptr<ConnectionCap>* cap) {
  try {
    auto socket = std::make_unique<zmq::socket_t>(context, zmq::socket_type::router);
    ConfigureSocket(*socket, options);
    socket->set(zmq::sockopt::router_mandatory, 1);
    // A connection that comes back (ZeroMQ reconnects a DEALER under its routing id) takes
    // the id over from its old self, which the ROUTER may still hold (a close not yet
    // processed). Without this ZeroMQ leaves the returning connection unnamed and reads its
    // first frame as a routing id: its requests go unanswered. The ids are unguessable
    // (ConnectionRoutingId), so no other peer can take one over.
    socket->set(zmq::sockopt::router_handover, 1);
    if (!options.curve.server_secret.empty()) {
      if (*zap == nullptr) {
        *zap = std::make_unique<ZapHandler>(context, options.curve.allowed_clients, options.curve.allowlist,
                                            options.metrics);
      }
      socket->set(zmq::sockopt::curve_server, 1);
      socket->set(zmq::sockopt::curve_secretkey, options.curve.server_secret);
    }
    // Watched before it listens, so the cap sees every connection it accepts.
    absl::StatusOr<std::unique_ptr<ConnectionCap>> watch =
        ConnectionCap::Watch(context, *socket, options.max_connections, options.metrics);
    if (!watch.ok()) return watch.status();
    socket->bind(address);
    *cap = *std::move(watch);  // null without a cap
    return MakeEndpoint(std::move(socket));
  } catch (const zmq::error_t& e) {
    return absl::InvalidArgumentError(absl::StrCat("bind ", address, ": ", e.what()));
  }
}

absl::StatusOr<Endpoint> ConnectDealer(zmq::context_t& context, const ZmqOptions& options, const std::string& peer,
                                       const std::string& address, std::unique_ptr<SocketMonitor>* monitor) {
  try {
    std::optional<PeerIdentity> server;
    absl::StatusOr<std::string> server_key = ServerKeyOf(options.curve, peer, &server);
    if (!server_key.ok()) return server_key.status();
    auto socket = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    ConfigureSocket(*socket, options);
    socket->set(zmq::sockopt::routing_id, ConnectionRoutingId(options.node_id));
    if (!server_key->empty()) {
      socket->set(zmq::sockopt::curve_serverkey, *server_key);
      socket->set(zmq::sockopt::curve_publickey, options.curve.client_public);
      socket->set(zmq::sockopt::curve_secretkey, options.curve.client_secret);
    }
    if (options.on_connection_lost) {
      if (*monitor == nullptr) *monitor = std::make_unique<SocketMonitor>(context, options.on_connection_lost);
      if (absl::Status watched = (*monitor)->Watch(*socket, peer); !watched.ok()) return watched;
    }
    socket->connect(address);
    Endpoint dealer = MakeEndpoint(std::move(socket));
    dealer.server = std::move(server);
    return dealer;
  } catch (const zmq::error_t& e) {
    return absl::InvalidArgumentError(absl::StrCat("connect ", address, ": ", e.what()));
  }
}

void HelperSockets::ReadAll(std::vector<int>& fds) {
  fds.clear();
  if (zap != nullptr) {
    zap->AnswerAll();
    fds.push_back(zap->socket().get(zmq::sockopt::fd));
  }
  if (monitor != nullptr) {
    monitor->ReadAll();
    monitor->AddFds(fds);
  }
  if (cap != nullptr) {
    cap->ReadAll();
    fds.push_back(cap->events().get(zmq::sockopt::fd));
  }
}

bool Readable(zmq::socket_t& socket) { return (socket.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0; }
bool Writable(zmq::socket_t& socket) { return (socket.get(zmq::sockopt::events) & ZMQ_POLLOUT) != 0; }

}  // namespace sy::transport
