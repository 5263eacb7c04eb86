// syctl's admin RPC client (see admin_client.h).
#include "services/syctl/admin_client.h"

#include <unistd.h>

#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/transport/curve_key_file.h"

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

absl::StatusOr<transport::CurveKeys> ClientKeysFromLines(const std::vector<transport::KeyLine>& lines) {
  transport::CurveKeys keys;
  for (const transport::KeyLine& line : lines) {
    const std::string& label = line.label;
    std::string* slot = label == "client_public"   ? &keys.client_public
                        : label == "client_secret" ? &keys.client_secret
                        : label == "server_public" ? &keys.server_public
                                                   : nullptr;
    if (slot == nullptr) {
      return transport::KeyLineError(
          line, absl::StrCat("unknown label '", label, "' (want client_public, client_secret or server_public)"));
    }
    if (!line.names.empty()) return transport::KeyLineError(line, absl::StrCat("want '", label, " KEY'"));
    if (!slot->empty()) return transport::KeyLineError(line, absl::StrCat("second '", label, "'"));
    *slot = line.key;
  }
  for (const auto& [label, key] : {std::pair<const char*, const std::string*>{"client_public", &keys.client_public},
                                   {"client_secret", &keys.client_secret},
                                   {"server_public", &keys.server_public}}) {
    if (key->empty()) return absl::InvalidArgumentError(absl::StrCat("admin key file has no '", label, " KEY' line"));
  }
  if (!transport::IsPublicKeyOf(keys.client_public, keys.client_secret)) {
    return absl::InvalidArgumentError("admin key file: client_public is not the public key of client_secret");
  }
  return keys;
}

absl::StatusOr<transport::CurveKeys> ParseClientKeys(const std::string& text) {
  absl::StatusOr<std::vector<transport::KeyLine>> lines = transport::ParseKeyLines(text);
  if (!lines.ok()) return lines.status();
  return ClientKeysFromLines(*lines);
}

absl::StatusOr<transport::CurveKeys> LoadClientKeys(const std::string& path) {
  absl::StatusOr<std::vector<transport::KeyLine>> lines = transport::ReadKeyFile(path);
  if (!lines.ok()) return lines.status();
  absl::StatusOr<transport::CurveKeys> keys = ClientKeysFromLines(*lines);
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
  if (curve.allowlist != nullptr) {
    // With cluster keys the routing id names our operator key's node ("NAME@..."), or the
    // coordinator drops what we send.
    std::optional<transport::PeerIdentity> self = curve.allowlist->Find(curve.client_public);
    if (!self.has_value()) return absl::InvalidArgumentError("our public key is not in the cluster allowlist");
    options.node_id = absl::StrCat(self->name, "@", options.node_id);
  }
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

absl::StatusOr<cluster::AdminReplyMessage> AdminClient::Call(
    const std::function<void(proto::admin::AdminRequest::Builder)>& fill, absl::Duration timeout) {
  capnp::MallocMessageBuilder b;
  auto envelope = b.initRoot<proto::Envelope>();
  envelope.setKind(proto::MessageKind::ADMIN);
  fill(envelope.getBody().initAs<proto::admin::AdminRequest>());
  absl::StatusOr<transport::DecodedMessage> reply =
      rpc_->Call({kCoordinatorPeer, transport::Route::kConnected}, b, {}, absl::Now() + timeout);
  if (!reply.ok()) return reply.status();
  return cluster::AdminReplyMessage::Read(*std::move(reply));
}

}  // namespace sy::syctl
