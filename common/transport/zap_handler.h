// The ZAP handler (ZeroMQ RFC 27) of a CURVE server socket: libzmq asks it, during
// each handshake, whether a client key may connect. A key is admitted when it is in
// the cluster allowlist (when one is given), else in the allowed-clients list (when
// not empty), else whenever it knows the server key. A refused handshake goes through
// transport::Refuse (reason "handshake": counted in sy_refused_total, rate-limited log).
// Lives on the transport's I/O thread: not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "common/metrics/registry.h"
#include "common/transport/peer_allowlist.h"

namespace sy::transport {

class ZapHandler {
 public:
  ZapHandler(zmq::context_t& context, std::vector<std::string> allowed_clients,
             std::shared_ptr<PeerAllowlist> allowlist, metrics::Registry* registry);

  // The socket: poll its ZMQ_FD (AnswerAll leaves it armed).
  zmq::socket_t& socket() { return socket_; }
  // Answers every waiting handshake request.
  void AnswerAll();

 private:
  bool Admits(const std::string& key) const;

  zmq::socket_t socket_;
  const std::vector<std::string> allowed_clients_;
  const std::shared_ptr<PeerAllowlist> allowlist_;
  metrics::Registry* const registry_;  // optional: refusals
};

}  // namespace sy::transport
