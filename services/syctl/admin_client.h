// AdminClient: syctl's connection to a coordinator. One DEALER (ZmqTransport) under
// a unique node id, one RpcNode without a handler; each Call sends one admin
// request and waits for the reply until the deadline (the RPC layer retries with
// the same request id meanwhile). DeadlineExceeded means the coordinator did not
// answer in time (unreachable, or busy; over CURVE also: the wrong server key).
// A large reply (the coordinator sends it in a data frame) reads like a small one.
// With a key file it connects as a CurveZMQ client, for a coordinator's --admin_listen.
// Thread-safe (RpcNode is).
//
//   auto client = AdminClient::Connect("tcp://127.0.0.1:5555");
//   auto reply = (*client)->Call([](proto::admin::AdminRequest::Builder r) { r.setStatus(); },
//                                absl::Seconds(2));
//   if (reply.ok()) std::cout << reply->reply().getStatus().getStep();
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "proto/admin.capnp.h"
#include "services/cluster/admin_reply.h"

namespace sy::syctl {

class AdminClient {
 public:
  // "tcp://HOST:PORT", or "HOST:PORT" (tcp assumed). InvalidArgument for anything else.
  // `curve`: the client key pair and server key (LoadClientKeys); empty: plain TCP.
  static absl::StatusOr<std::unique_ptr<AdminClient>> Connect(const std::string& address,
                                                              const transport::CurveKeys& curve = {});

  // Sends the request `fill` builds; the reply's AdminReply (see AdminReplyMessage).
  absl::StatusOr<cluster::AdminReplyMessage> Call(
      const std::function<void(proto::admin::AdminRequest::Builder)>& fill, absl::Duration timeout);

 private:
  explicit AdminClient(std::unique_ptr<transport::RpcNode> rpc) : rpc_(std::move(rpc)) {}
  std::unique_ptr<transport::RpcNode> rpc_;
};

// The endpoint syctl connects to for `address` (see Connect).
absl::StatusOr<std::string> NormalizeAddress(const std::string& address);

// syctl's admin key file (--admin_key_file): one entry per line, a label then a
// 40-character Z85 key (`syctl keygen` makes key pairs); blank lines and lines starting
// with '#' are ignored:
//
//   client_public <our Z85 public key: an 'admin NAME KEY' line of the coordinator's --admin_keys>
//   client_secret <our Z85 secret key>
//   server_public <the coordinator's server_public>
//
// Parses the text into CurveKeys (client_public, client_secret, server_public);
// InvalidArgument naming the line for anything malformed or missing.
absl::StatusOr<transport::CurveKeys> ParseClientKeys(const std::string& text);
// Reads and parses `path`; InvalidArgument when it cannot be read.
absl::StatusOr<transport::CurveKeys> LoadClientKeys(const std::string& path);

}  // namespace sy::syctl
