// AdminClient: syctl's connection to a coordinator. One DEALER (ZmqTransport) under
// a unique node id, one RpcNode without a handler; each Call sends one admin
// request and waits for the reply until the deadline (the RPC layer retries with
// the same request id meanwhile). DeadlineExceeded means the coordinator did not
// answer in time (unreachable, or busy). Thread-safe (RpcNode is).
//
//   auto client = AdminClient::Connect("tcp://127.0.0.1:5555");
//   auto reply = (*client)->Call([](proto::admin::AdminRequest::Builder r) { r.setStatus(); },
//                                absl::Seconds(2));
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/transport/rpc.h"
#include "proto/admin.capnp.h"

namespace sy::syctl {

class AdminClient {
 public:
  // "tcp://HOST:PORT", or "HOST:PORT" (tcp assumed). InvalidArgument for anything else.
  static absl::StatusOr<std::unique_ptr<AdminClient>> Connect(const std::string& address);

  // Sends the request `fill` builds; the decoded reply (its body is an AdminReply).
  absl::StatusOr<transport::DecodedMessage> Call(
      const std::function<void(proto::admin::AdminRequest::Builder)>& fill, absl::Duration timeout);

 private:
  explicit AdminClient(std::unique_ptr<transport::RpcNode> rpc) : rpc_(std::move(rpc)) {}
  std::unique_ptr<transport::RpcNode> rpc_;
};

// The endpoint syctl connects to for `address` (see Connect).
absl::StatusOr<std::string> NormalizeAddress(const std::string& address);

}  // namespace sy::syctl
