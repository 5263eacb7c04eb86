// The CURVE handshake check (see zap_handler.h).
#include "common/transport/zap_handler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/transport/refusals.h"

namespace sy::transport {

ZapHandler::ZapHandler(zmq::context_t& context, std::vector<std::string> allowed_clients,
                       std::shared_ptr<PeerAllowlist> allowlist, metrics::Registry* registry)
    : socket_(context, zmq::socket_type::rep),
      allowed_clients_(std::move(allowed_clients)),
      allowlist_(std::move(allowlist)),
      registry_(registry) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind("inproc://zeromq.zap.01");
}

bool ZapHandler::Admits(const std::string& key) const {
  if (key.empty()) return false;
  if (allowlist_ != nullptr) return allowlist_->Find(key).has_value();
  return allowed_clients_.empty() ||
         std::find(allowed_clients_.begin(), allowed_clients_.end(), key) != allowed_clients_.end();
}

void ZapHandler::AnswerAll() {
  while (true) {
    std::vector<zmq::message_t> request;
    zmq::message_t part;
    if (!socket_.recv(part, zmq::recv_flags::dontwait)) return;
    request.push_back(std::move(part));
    while (request.back().more()) {
      zmq::message_t next;
      (void)socket_.recv(next, zmq::recv_flags::none);
      request.push_back(std::move(next));
    }
    // version, request id, domain, address, identity, mechanism, client key (32 bytes).
    std::string key;
    if (request.size() >= 7 && request[5].to_string() == "CURVE" && request[6].size() == 32) {
      char z85[41] = {0};
      if (zmq_z85_encode(z85, static_cast<const uint8_t*>(request[6].data()), 32) != nullptr) key = z85;
    }
    const bool ok = Admits(key);
    if (!ok) {
      const std::string address = request.size() > 3 ? request[3].to_string() : "?";
      (void)Refuse(registry_, "handshake",
                   absl::PermissionDeniedError(absl::StrCat(
                       "connection from ", address, ": ",
                       key.empty() ? std::string("no CURVE key") : "key " + key + " is not in the allowlist")));
    }
    const std::string request_id = request.size() > 1 ? request[1].to_string() : "";
    const std::string reply[] = {"1.0", request_id, ok ? "200" : "400", ok ? "OK" : "client key not allowed",
                                 ok ? key : "", ""};
    for (size_t i = 0; i < 6; ++i) {
      socket_.send(zmq::buffer(reply[i]), i + 1 < 6 ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
}

}  // namespace sy::transport
