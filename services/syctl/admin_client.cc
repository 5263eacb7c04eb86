// syctl's admin RPC client (see admin_client.h).
#include "services/syctl/admin_client.h"

#include <unistd.h>
#include <zmq.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "services/coordinator/coordinator_service.h"

namespace sy::syctl {

constexpr char kCoordinatorPeer[] = "coordinator";

absl::StatusOr<std::string> NormalizeAddress(const std::string& address) {
  if (address.empty()) return absl::InvalidArgumentError("--coordinator is required (e.g. tcp://127.0.0.1:5555)");
  std::string endpoint = absl::StrContains(address, "://") ? address : absl::StrCat("tcp://", address);
  if (!absl::StartsWith(endpoint, "tcp://") && !absl::StartsWith(endpoint, "ipc://")) {
    return absl::InvalidArgumentError(absl::StrCat("coordinator address '", address, "': want tcp://HOST:PORT"));
  }
  if (absl::StartsWith(endpoint, "tcp://") && endpoint.find(':', 6) == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("coordinator address '", address, "' has no port"));
  }
  return endpoint;
}

absl::StatusOr<transport::CurveKeys> ParseClientKeys(const std::string& text) {
  transport::CurveKeys keys;
  int line_number = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_number;
    std::vector<std::string> words = absl::StrSplit(raw, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.empty() || words[0][0] == '#') continue;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("admin key file line ", line_number, ": ", why));
    };
    const std::string& label = words[0];
    std::string* slot = label == "client_public"   ? &keys.client_public
                        : label == "client_secret" ? &keys.client_secret
                        : label == "server_public" ? &keys.server_public
                                                   : nullptr;
    if (slot == nullptr) {
      return bad(absl::StrCat("unknown label '", label, "' (want client_public, client_secret or server_public)"));
    }
    if (words.size() != 2) return bad(absl::StrCat("want '", label, " KEY'"));
    if (!coordinator::IsZ85Key(words[1])) return bad("the key is not a 40-character Z85 CURVE key (see `syctl keygen`)");
    if (!slot->empty()) return bad(absl::StrCat("second '", label, "'"));
    *slot = words[1];
  }
  for (const auto& [label, key] : {std::pair<const char*, const std::string*>{"client_public", &keys.client_public},
                                   {"client_secret", &keys.client_secret},
                                   {"server_public", &keys.server_public}}) {
    if (key->empty()) return absl::InvalidArgumentError(absl::StrCat("admin key file has no '", label, " KEY' line"));
  }
  char derived[41];
  if (zmq_curve_public(derived, keys.client_secret.c_str()) != 0 || keys.client_public != derived) {
    return absl::InvalidArgumentError("admin key file: client_public is not the public key of client_secret");
  }
  return keys;
}

absl::StatusOr<transport::CurveKeys> LoadClientKeys(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read admin key file '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  auto keys = ParseClientKeys(text.str());
  if (!keys.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", keys.status().message()));
  return keys;
}

absl::StatusOr<std::unique_ptr<AdminClient>> AdminClient::Connect(const std::string& address,
                                                                  const transport::CurveKeys& curve) {
  auto endpoint = NormalizeAddress(address);
  if (!endpoint.ok()) return endpoint.status();
  transport::ZmqOptions options;
  options.curve = curve;
  options.node_id = absl::StrCat("syctl-", ::getpid(), "-", absl::ToUnixNanos(absl::Now()) % 1000000007);
  auto zmq = transport::ZmqTransport::Create(options);
  if (!zmq.ok()) return zmq.status();
  if (absl::Status s = (*zmq)->Connect(kCoordinatorPeer, *endpoint); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot connect to '", *endpoint, "': ", s.message()));
  }
  transport::RpcOptions rpc_options;
  rpc_options.attempt_timeout = absl::Milliseconds(300);
  auto rpc = transport::RpcNode::Create(*std::move(zmq), rpc_options, nullptr);
  if (!rpc.ok()) return rpc.status();
  return std::unique_ptr<AdminClient>(new AdminClient(*std::move(rpc)));
}

absl::StatusOr<transport::DecodedMessage> AdminClient::Call(
    const std::function<void(proto::admin::AdminRequest::Builder)>& fill, absl::Duration timeout) {
  capnp::MallocMessageBuilder b;
  auto envelope = b.initRoot<proto::Envelope>();
  envelope.setKind(proto::MessageKind::ADMIN);
  fill(envelope.getBody().initAs<proto::admin::AdminRequest>());
  return rpc_->Call({kCoordinatorPeer, transport::Route::kConnected}, b, {}, absl::Now() + timeout);
}

}  // namespace sy::syctl
