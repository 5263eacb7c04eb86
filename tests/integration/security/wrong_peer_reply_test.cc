// A reply counts only when it comes from the peer its request went to: a third peer that
// learned the request id cannot complete the call with a forged reply.
#include <future>
#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/transport/envelope_codec.h"
#include "common/transport/inproc_transport.h"
#include "common/transport/rpc.h"
#include "proto/envelope.capnp.h"

namespace sy::transport {
namespace {

TEST(WrongPeerReply, AReplyFromAThirdPeerDoesNotCompleteTheCall) {
  InProcNetwork net;
  // The server keeps the request unanswered and tells the test its id.
  std::promise<uint64_t> seen_id;
  auto server = RpcNode::Create(*net.CreateTransport("server"), {},
                                [&seen_id](DecodedMessage request, Responder) {
                                  seen_id.set_value(request.envelope().getRequestId());
                                });
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->transport().Bind("inproc://server").ok());
  std::unique_ptr<Transport> third = *net.CreateTransport("third");
  ASSERT_TRUE(third->Bind("inproc://third").ok());

  auto client_transport = *net.CreateTransport("client");
  ASSERT_TRUE(client_transport->Connect("server", "inproc://server").ok());
  ASSERT_TRUE(client_transport->Connect("third", "inproc://third").ok());
  RpcOptions options;
  options.max_attempts = 1;
  auto client = RpcNode::Create(std::move(client_transport), options, nullptr);
  ASSERT_TRUE(client.ok());

  std::promise<absl::StatusOr<DecodedMessage>> result;
  capnp::MallocMessageBuilder request;
  request.initRoot<proto::Envelope>().setKind(proto::MessageKind::PING);
  (*client)->CallAsync({"server", Route::kConnected}, request, {}, absl::Now() + absl::Seconds(2),
                       [&result](absl::StatusOr<DecodedMessage> r) { result.set_value(std::move(r)); });
  const uint64_t id = seen_id.get_future().get();

  // The third peer (the client connected to it too) answers that id first.
  capnp::MallocMessageBuilder forged;
  auto envelope = forged.initRoot<proto::Envelope>();
  envelope.setKind(proto::MessageKind::PING);
  envelope.setSender("server");
  envelope.setRequestId(id);
  envelope.setIsReply(true);
  envelope.initStatus();
  ASSERT_TRUE(third->Send(Message{{"client", Route::kBound}, EncodeHeader(forged)}, absl::Now() + absl::Seconds(1)).ok());

  absl::StatusOr<DecodedMessage> reply = result.get_future().get();
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded) << reply.status();
  EXPECT_EQ((*client)
                ->metrics()
                .GetCounter("sy_rpc_replies_from_wrong_peer_total", "", {{"node", "client"}})
                .value(),
            1);
}

}  // namespace
}  // namespace sy::transport
