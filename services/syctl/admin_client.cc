// syctl's admin RPC client (see admin_client.h).
#include "services/syctl/admin_client.h"

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/transport/zmq_transport.h"

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

absl::StatusOr<std::unique_ptr<AdminClient>> AdminClient::Connect(const std::string& address) {
  auto endpoint = NormalizeAddress(address);
  if (!endpoint.ok()) return endpoint.status();
  transport::ZmqOptions options;
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
