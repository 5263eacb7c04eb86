// ZmqTransport and RpcNode over tcp://127.0.0.1 within one process: request/reply,
// malformed input answered and counted, send-side backpressure, CurveZMQ, and the paths
// without a thread hand-off: RpcNode dispatching on the transport's I/O thread (a handler
// there may connect and call onward; requests that arrived before the node are served)
// and sends written from the calling thread, keeping each peer's order.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <mutex>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "common/log/log.h"
#include "common/transport/peer_allowlist.h"
#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "tests/unit/transport/testing.h"
#include "tests/unit/transport/wait.h"

namespace sy::transport {
namespace {

using testing::EchoHandler;
using testing::F32Frame;
using testing::FillPing;
using testing::RawPing;
using testing::Request;

absl::Time In(absl::Duration d) { return absl::Now() + d; }

std::unique_ptr<ZmqTransport> MakeTransport(const std::string& node_id, ZmqOptions options = {}) {
  options.node_id = node_id;
  auto transport = ZmqTransport::Create(options);
  EXPECT_TRUE(transport.ok()) << transport.status();
  return *std::move(transport);
}

struct Server {
  std::unique_ptr<RpcNode> node;
  std::string endpoint;
  metrics::Registry registry;
};

std::unique_ptr<Server> StartEchoServer(ZmqOptions zmq_options = {}, RpcOptions rpc_options = {}) {
  auto server = std::make_unique<Server>();
  auto transport = MakeTransport("server", zmq_options);
  auto endpoint = transport->Bind("tcp://127.0.0.1:*");
  EXPECT_TRUE(endpoint.ok()) << endpoint.status();
  server->endpoint = *endpoint;
  rpc_options.metrics = &server->registry;
  server->node = *RpcNode::Create(std::move(transport), rpc_options, EchoHandler);
  return server;
}

TEST(ZmqTransport, RouterDealerRequestReplyOverTcp) {
  auto server = StartEchoServer();
  auto client_transport = MakeTransport("client");
  ASSERT_TRUE(client_transport->Connect("server", server->endpoint).ok());
  auto client = *RpcNode::Create(std::move(client_transport), {}, nullptr);
  for (size_t count : {size_t{0}, size_t{1}, size_t{1000}, size_t{1} << 18}) {
    Request request;
    FillPing(request, count, 3.0f);
    auto reply = client->Call({"server"}, request.header, request.data, In(absl::Seconds(10)));
    ASSERT_TRUE(reply.ok()) << reply.status();
    ASSERT_EQ(reply->message().data.size(), count > 0 ? 1u : 0u);
    if (count > 0) {
      EXPECT_EQ(std::memcmp(reply->data(0).data(), request.data[0].data(), count * 4), 0);
    }
  }
}

TEST(ZmqTransport, ManyClientsEachGetTheirOwnReplies) {
  auto server = StartEchoServer();
  constexpr int kClients = 4, kCalls = 50;
  std::vector<std::unique_ptr<RpcNode>> clients;
  for (int c = 0; c < kClients; ++c) {
    auto transport = MakeTransport("client-" + std::to_string(c));
    ASSERT_TRUE(transport->Connect("server", server->endpoint).ok());
    clients.push_back(*RpcNode::Create(std::move(transport), {}, nullptr));
  }
  std::atomic<int> correct{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      for (int i = 0; i < kCalls; ++i) {
        const float tag = static_cast<float>(c * 1000 + i);
        Request request;
        FillPing(request, 8, tag);
        auto reply = clients[c]->Call({"server"}, request.header, request.data, In(absl::Seconds(20)));
        float first = -1;
        if (reply.ok()) std::memcpy(&first, reply->data(0).data(), sizeof(first));
        if (first == tag) ++correct;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(correct.load(), kClients * kCalls);
}

// A bare DEALER with routing id `id` that never reconnects, not yet connected.
std::unique_ptr<zmq::socket_t> RawDealer(zmq::context_t& context, const std::string& id) {
  auto dealer = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
  dealer->set(zmq::sockopt::linger, 0);
  dealer->set(zmq::sockopt::routing_id, id);
  dealer->set(zmq::sockopt::reconnect_ivl, -1);
  dealer->set(zmq::sockopt::rcvtimeo, 10000);
  return dealer;
}

// A RawDealer connected to `endpoint` whose first ping has been answered: the server's
// ROUTER holds its connection under `id`.
std::unique_ptr<zmq::socket_t> AnsweredRawDealer(zmq::context_t& context, const std::string& id,
                                                 const std::string& endpoint) {
  auto dealer = RawDealer(context, id);
  dealer->connect(endpoint);
  zmq::message_t answer;
  EXPECT_TRUE(dealer->send(RawPing({"server"}, id, 1, 0, 0).header.ToZmq(), zmq::send_flags::none));
  EXPECT_TRUE(dealer->recv(answer, zmq::recv_flags::none)) << id << " got no answer";
  return dealer;
}

// A connection that comes back under its routing id while the ROUTER still holds the old
// one (ZeroMQ reconnecting a DEALER before the server processed the close) takes the id
// over and is answered. The old connection here is a bare DEALER that stays open.
TEST(ZmqTransport, AConnectionBackUnderItsRoutingIdTakesItOverFromTheStaleOne) {
  auto server = StartEchoServer();
  zmq::context_t context(1);
  auto stale = AnsweredRawDealer(context, "client@0123456789abcdef", server->endpoint);
  auto back = AnsweredRawDealer(context, "client@0123456789abcdef", server->endpoint);
}

// Each connection has a fresh routing id, "node@" and 16 hex digits: a node that closes its
// connection and opens another (the coordinator reaching a host that came back) never meets
// the old one, which the server may still hold.
TEST(ZmqTransport, EachConnectionHasAFreshRoutingIdNamingItsNode) {
  std::mutex mu;
  std::vector<std::string> routing_ids;
  auto transport = MakeTransport("server");
  auto endpoint = transport->Bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok());
  auto server = *RpcNode::Create(std::move(transport), {}, [&](DecodedMessage request, Responder responder) {
    {
      std::lock_guard<std::mutex> lock(mu);
      routing_ids.push_back(request.message().address.peer);
    }
    EchoHandler(std::move(request), responder);
  });
  auto client = *RpcNode::Create(MakeTransport("client"), {}, nullptr);
  constexpr int kConnections = 5;
  for (int connection = 0; connection < kConnections; ++connection) {
    ASSERT_TRUE(client->transport().Connect("server", *endpoint).ok());
    Request request;
    FillPing(request, 4, static_cast<float>(connection));
    auto reply = client->Call({"server"}, request.header, request.data, In(absl::Seconds(10)));
    ASSERT_TRUE(reply.ok()) << "connection " << connection << ": " << reply.status();
    ASSERT_TRUE(client->transport().Disconnect("server").ok());
  }
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(routing_ids.size(), size_t{kConnections});
  for (const std::string& id : routing_ids) {
    EXPECT_EQ(id.size(), std::string("client@").size() + 16) << id;
    EXPECT_EQ(id.rfind("client@", 0), 0u) << id;
    EXPECT_EQ(NodeOfPeer(id), "client");
  }
  std::sort(routing_ids.begin(), routing_ids.end());
  EXPECT_EQ(std::unique(routing_ids.begin(), routing_ids.end()), routing_ids.end()) << "a routing id came twice";
}

TEST(ZmqTransport, UnknownPeerIsNotFound) {
  auto transport = MakeTransport("lonely");
  absl::Status status = transport->Send(RawPing({"nobody"}, "lonely", 1, 0, 0), In(absl::Seconds(1)));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
}

// Sends `message` raw and returns the decoded reply's status code.
proto::ErrorCode ReplyCode(Transport& raw, Message message) {
  EXPECT_TRUE(raw.Send(std::move(message), In(absl::Seconds(5))).ok());
  auto reply = raw.Receive(In(absl::Seconds(10)));
  if (!reply.ok()) return proto::ErrorCode::UNKNOWN;
  auto decoded = DecodedMessage::Decode(*std::move(reply), {});
  if (!decoded.ok() || !decoded->envelope().getIsReply()) return proto::ErrorCode::UNKNOWN;
  return decoded->envelope().getStatus().getCode();
}

TEST(ZmqTransport, MalformedMessagesGetErrorRepliesAndAreCounted) {
  RpcOptions rpc_options;
  rpc_options.limits.max_message_bytes = 1 << 20;
  auto server = StartEchoServer({}, rpc_options);
  auto raw = MakeTransport("raw");
  ASSERT_TRUE(raw->Connect("server", server->endpoint).ok());
  auto malformed = [&] {
    return server->registry.GetCounter("sy_rpc_malformed_total", "", {{"node", "server"}}).value();
  };

  Message truncated = RawPing({"server"}, "raw", 1, 4, 0);
  truncated.header = Frame::CopyOf(truncated.header.data(), truncated.header.size() / 2);
  EXPECT_EQ(ReplyCode(*raw, std::move(truncated)), proto::ErrorCode::INVALID_ARGUMENT);
  EXPECT_EQ(malformed(), 1);

  Message garbage{{"server"}, Frame::FromVector(std::vector<uint8_t>(96, 0xFF)), {}};
  EXPECT_EQ(ReplyCode(*raw, std::move(garbage)), proto::ErrorCode::INVALID_ARGUMENT);
  EXPECT_EQ(malformed(), 2);

  Message extra_frame = RawPing({"server"}, "raw", 2, 4, 0);
  extra_frame.data.push_back(F32Frame(4, 0));
  EXPECT_EQ(ReplyCode(*raw, std::move(extra_frame)), proto::ErrorCode::INVALID_ARGUMENT);
  EXPECT_EQ(malformed(), 3);

  Message short_tensor = RawPing({"server"}, "raw", 3, 4, 0);
  short_tensor.data[0] = F32Frame(3, 0);
  EXPECT_EQ(ReplyCode(*raw, std::move(short_tensor)), proto::ErrorCode::INVALID_ARGUMENT);
  EXPECT_EQ(malformed(), 4);

  Message oversized = RawPing({"server"}, "raw", 4, (2 << 20) / 4, 0);  // 2 MiB > 1 MiB limit
  EXPECT_EQ(ReplyCode(*raw, std::move(oversized)), proto::ErrorCode::INVALID_ARGUMENT);
  EXPECT_EQ(malformed(), 5);

  // The server keeps serving.
  EXPECT_EQ(ReplyCode(*raw, RawPing({"server"}, "raw", 5, 4, 0)), proto::ErrorCode::OK);
  EXPECT_EQ(malformed(), 5);
}

TEST(ZmqTransport, SlowReceiverBoundsQueuesAndSenderGetsResourceExhausted) {
  ZmqOptions receiver_options;
  receiver_options.receive_queue.max_messages = 2;
  receiver_options.receive_hwm = 1;
  auto receiver = MakeTransport("receiver", receiver_options);
  auto endpoint = receiver->Bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok());
  ZmqOptions sender_options;
  sender_options.send_queue.max_messages = 8;
  sender_options.send_hwm = 1;
  auto sender = MakeTransport("sender", sender_options);
  ASSERT_TRUE(sender->Connect("receiver", *endpoint).ok());

  // The receiver does not read: kernel buffers, high-water marks and then the send
  // queue fill up, and a send finally fails with a clear status instead of growing memory.
  int accepted = 0;
  absl::Status last;
  for (int i = 1; i <= 5000 && last.ok(); ++i) {
    last = sender->Send(RawPing({"receiver"}, "sender", i, 1 << 16, 0), In(absl::Milliseconds(20)));
    if (last.ok()) ++accepted;
  }
  EXPECT_EQ(last.code(), absl::StatusCode::kResourceExhausted) << last;
  EXPECT_LE(sender->stats().max_outbound_depth, 8u);

  // Reading now drains everything that was accepted: bounded, and nothing lost.
  for (int i = 1; i <= accepted; ++i) {
    auto message = receiver->Receive(In(absl::Seconds(20)));
    ASSERT_TRUE(message.ok()) << "message " << i << ": " << message.status();
    auto decoded = DecodedMessage::Decode(*std::move(message), {});
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(decoded->envelope().getRequestId(), static_cast<uint64_t>(i));
  }
  EXPECT_LE(receiver->stats().max_inbound_depth, 2u);
}

TEST(ZmqTransport, CurveEncryptedRequestReplyAndWrongServerKeyGetsNoAnswer) {
  char server_public[41], server_secret[41], client_public[41], client_secret[41], other_public[41], other_secret[41];
  ASSERT_EQ(zmq_curve_keypair(server_public, server_secret), 0);
  ASSERT_EQ(zmq_curve_keypair(client_public, client_secret), 0);
  ASSERT_EQ(zmq_curve_keypair(other_public, other_secret), 0);
  ZmqOptions server_options;
  server_options.curve.server_secret = server_secret;
  auto server = StartEchoServer(server_options);

  ZmqOptions good;
  good.curve.server_public = server_public;
  good.curve.client_public = client_public;
  good.curve.client_secret = client_secret;
  auto client = *RpcNode::Create(MakeTransport("good-client", good), {}, nullptr);
  ASSERT_TRUE(client->transport().Connect("server", server->endpoint).ok());
  Request request;
  FillPing(request, 16, 1.0f);
  auto reply = client->Call({"server"}, request.header, request.data, In(absl::Seconds(10)));
  EXPECT_TRUE(reply.ok()) << reply.status();

  ZmqOptions wrong;
  wrong.curve.server_public = other_public;  // not the server's key
  wrong.curve.client_public = client_public;
  wrong.curve.client_secret = client_secret;
  RpcOptions quick;
  quick.attempt_timeout = absl::Milliseconds(20);
  auto impostor = *RpcNode::Create(MakeTransport("wrong-client", wrong), quick, nullptr);
  ASSERT_TRUE(impostor->transport().Connect("server", server->endpoint).ok());
  Request again;
  FillPing(again, 16, 1.0f);
  auto refused = impostor->Call({"server"}, again.header, again.data, In(absl::Milliseconds(300)));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDeadlineExceeded) << refused.status();
}

std::mutex log_mu;
std::vector<std::string> log_lines;  // under log_mu
void CaptureLog(const std::string& line) {
  std::lock_guard<std::mutex> lock(log_mu);
  log_lines.push_back(line);
}

TEST(ZmqTransport, CurveAllowListAdmitsListedClientsAndTellsWhoSent) {
  char server_public[41], server_secret[41], admin_public[41], admin_secret[41], other_public[41], other_secret[41];
  ASSERT_EQ(zmq_curve_keypair(server_public, server_secret), 0);
  ASSERT_EQ(zmq_curve_keypair(admin_public, admin_secret), 0);
  ASSERT_EQ(zmq_curve_keypair(other_public, other_secret), 0);
  ZmqOptions server_options;
  server_options.node_id = "server";
  server_options.curve.server_secret = server_secret;
  server_options.curve.allowed_clients = {admin_public};
  metrics::Registry registry;
  server_options.metrics = &registry;
  auto server_transport = *ZmqTransport::Create(server_options);
  auto endpoint = server_transport->Bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok());
  std::mutex mu;
  std::vector<std::string> senders;
  auto server = *RpcNode::Create(std::move(server_transport), {}, [&](DecodedMessage request, Responder responder) {
    {
      std::lock_guard<std::mutex> lock(mu);
      senders.push_back(request.message().client_key);
    }
    EchoHandler(std::move(request), responder);
  });

  ZmqOptions admin;
  admin.curve.server_public = server_public;
  admin.curve.client_public = admin_public;
  admin.curve.client_secret = admin_secret;
  auto admin_client = *RpcNode::Create(MakeTransport("admin", admin), {}, nullptr);
  ASSERT_TRUE(admin_client->transport().Connect("server", *endpoint).ok());
  Request request;
  FillPing(request, 4, 1.0f);
  ASSERT_TRUE(admin_client->Call({"server"}, request.header, request.data, In(absl::Seconds(10))).ok());

  ZmqOptions stranger;
  stranger.curve.server_public = server_public;  // the right server key, an unlisted client key
  stranger.curve.client_public = other_public;
  stranger.curve.client_secret = other_secret;
  RpcOptions quick;
  quick.attempt_timeout = absl::Milliseconds(20);
  auto stranger_client = *RpcNode::Create(MakeTransport("stranger", stranger), quick, nullptr);
  ASSERT_TRUE(stranger_client->transport().Connect("server", *endpoint).ok());
  Request again;
  FillPing(again, 4, 1.0f);
  log::SetSinkForTesting(&CaptureLog);
  auto refused = stranger_client->Call({"server"}, again.header, again.data, In(absl::Milliseconds(300)));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDeadlineExceeded) << refused.status();
  log::SetSinkForTesting(nullptr);
  {
    // The server counts the refusal and says whom it refused: the address and the unlisted key.
    EXPECT_GE(registry.GetCounter("sy_refused_total", "", {{"reason", "handshake"}}).value(), 1);
    std::lock_guard<std::mutex> lock(log_mu);
    const std::string expected = std::string("key ") + other_public + " is not in the allowlist";
    EXPECT_TRUE(std::any_of(log_lines.begin(), log_lines.end(), [&](const std::string& line) {
      return line.find("refused (handshake): connection from 127.0.0.1") != std::string::npos &&
             line.find(expected) != std::string::npos;
    })) << "no refusal logged";
  }

  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(senders, std::vector<std::string>{admin_public});
}

// With an allowlist, a listed key that connects under another node's name as its routing id
// is refused, and takes nothing from that node: the node's connection has an id nobody
// can guess, and it goes on being answered.
TEST(ZmqTransport, AKeyUsingAnotherNodesNameAsItsRoutingIdIsRefusedAndTakesNothing) {
  char server_public[41], server_secret[41], client_public[41], client_secret[41], other_public[41], other_secret[41];
  ASSERT_EQ(zmq_curve_keypair(server_public, server_secret), 0);
  ASSERT_EQ(zmq_curve_keypair(client_public, client_secret), 0);
  ASSERT_EQ(zmq_curve_keypair(other_public, other_secret), 0);
  auto allowlist = PeerAllowlist::FromText(std::string("host server ") + server_public + "\ntrainer client " +
                                           client_public + "\ntrainer other " + other_public + "\n");
  ASSERT_TRUE(allowlist.ok()) << allowlist.status();
  ZmqOptions server_options;
  server_options.curve.allowlist = *allowlist;
  server_options.curve.server_secret = server_secret;
  server_options.curve.client_public = server_public;
  server_options.curve.client_secret = server_secret;
  auto server = StartEchoServer(server_options);
  ZmqOptions client_options;
  client_options.curve.allowlist = *allowlist;
  client_options.curve.client_public = client_public;
  client_options.curve.client_secret = client_secret;
  auto client = *RpcNode::Create(MakeTransport("client", client_options), {}, nullptr);
  ASSERT_TRUE(client->transport().Connect("server", server->endpoint).ok());
  Request first;
  FillPing(first, 4, 1.0f);
  ASSERT_TRUE(client->Call({"server"}, first.header, first.data, In(absl::Seconds(10))).ok());

  zmq::context_t context(1);
  auto impostor = RawDealer(context, "client");  // the key of "other", calling itself "client"
  impostor->set(zmq::sockopt::curve_serverkey, server_public);
  impostor->set(zmq::sockopt::curve_publickey, other_public);
  impostor->set(zmq::sockopt::curve_secretkey, other_secret);
  impostor->connect(server->endpoint);
  ASSERT_TRUE(impostor->send(RawPing({"server"}, "client", 1, 0, 0).header.ToZmq(), zmq::send_flags::none));
  ASSERT_TRUE(testing::WaitUntil([&] { return server->node->transport().stats().dropped_unauthenticated >= 1; }));

  Request second;
  FillPing(second, 4, 2.0f);
  auto reply = client->Call({"server"}, second.header, second.data, In(absl::Seconds(10)));
  ASSERT_TRUE(reply.ok()) << reply.status();
  float value = 0;
  std::memcpy(&value, reply->data(0).data(), sizeof(value));
  EXPECT_EQ(value, 2.0f);
  EXPECT_EQ(server->node->transport().stats().dropped_unauthenticated, 1u);
}

TEST(ZmqTransport, BadCurveKeysAreRejectedAtCreate) {
  ZmqOptions options;
  options.node_id = "x";
  options.curve.server_public = "short";
  EXPECT_EQ(ZmqTransport::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  ZmqOptions no_id;
  EXPECT_EQ(ZmqTransport::Create(no_id).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ZmqTransport, HandlerOnTheIoThreadConnectsAndCallsOnward) {
  auto backend_transport = MakeTransport("backend");
  const std::string backend_endpoint = *backend_transport->Bind("tcp://127.0.0.1:*");
  auto backend = *RpcNode::Create(std::move(backend_transport), {}, EchoHandler);

  // The front's handler runs on its transport's I/O thread: Connect there must not wait
  // for that same thread, and the onward call's reply must reach the new socket.
  auto front_transport = MakeTransport("front");
  const std::string front_endpoint = *front_transport->Bind("tcp://127.0.0.1:*");
  RpcNode* front_node = nullptr;
  auto front = *RpcNode::Create(std::move(front_transport), {}, [&](DecodedMessage request, Responder responder) {
    absl::Status connected = front_node->transport().Connect("backend", backend_endpoint);
    if (!connected.ok() && !absl::IsAlreadyExists(connected)) {
      responder.Fail(connected);
      return;
    }
    Request onward;
    FillPing(onward, request.envelope().getTensors().size(), 1.0f);
    front_node->CallAsync({"backend"}, onward.header, onward.data, In(absl::Seconds(10)),
                          [responder](absl::StatusOr<DecodedMessage> reply) mutable {
                            if (!reply.ok()) {
                              responder.Fail(reply.status());
                              return;
                            }
                            capnp::MallocMessageBuilder answer;
                            answer.initRoot<proto::Envelope>().setKind(proto::MessageKind::PING);
                            responder.Reply(answer);
                          });
  });
  front_node = front.get();

  auto client_transport = MakeTransport("client");
  ASSERT_TRUE(client_transport->Connect("front", front_endpoint).ok());
  auto client = *RpcNode::Create(std::move(client_transport), {}, nullptr);
  for (int i = 0; i < 3; ++i) {
    Request request;
    FillPing(request, 4, 2.0f);
    auto reply = client->Call({"front"}, request.header, request.data, In(absl::Seconds(10)));
    ASSERT_TRUE(reply.ok()) << reply.status();
  }
  client->Close();
  front->Close();
  backend->Close();
}

TEST(ZmqTransport, RequestsThatArrivedBeforeTheNodeAreServed) {
  auto server_transport = MakeTransport("server");
  const std::string endpoint = *server_transport->Bind("tcp://127.0.0.1:*");
  auto raw = MakeTransport("raw");
  ASSERT_TRUE(raw->Connect("server", endpoint).ok());
  constexpr int kRequests = 5;
  for (int i = 1; i <= kRequests; ++i) ASSERT_TRUE(raw->Send(RawPing({"server"}, "raw", i, 2, 0), In(absl::Seconds(5))).ok());
  // Nothing serves them yet: they wait in the server transport's receive queue.
  ASSERT_TRUE(testing::WaitUntil([&] { return server_transport->stats().received == kRequests; }));

  auto server = *RpcNode::Create(std::move(server_transport), {}, EchoHandler);
  for (int i = 1; i <= kRequests; ++i) {
    auto reply = raw->Receive(In(absl::Seconds(10)));
    ASSERT_TRUE(reply.ok()) << "reply " << i << ": " << reply.status();
    auto decoded = DecodedMessage::Decode(*std::move(reply), {});
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->envelope().getRequestId(), static_cast<uint64_t>(i));
  }
  server->Close();
}

TEST(ZmqTransport, SendsKeepTheirOrderWhenSomeWaitBehindAFullSocket) {
  ZmqOptions receiver_options;
  receiver_options.receive_hwm = 1;
  auto receiver = MakeTransport("receiver", receiver_options);
  const std::string endpoint = *receiver->Bind("tcp://127.0.0.1:*");
  ZmqOptions sender_options;
  sender_options.send_hwm = 1;
  auto sender = MakeTransport("sender", sender_options);
  ASSERT_TRUE(sender->Connect("receiver", endpoint).ok());

  // Large frames fill the socket often, so sends alternate between written at once and
  // queued for the I/O thread; the receiver reads meanwhile and sees every id in order.
  constexpr int kMessages = 2000;
  std::atomic<int> in_order{0};
  std::thread reader([&] {
    for (int i = 1; i <= kMessages; ++i) {
      auto message = receiver->Receive(In(absl::Seconds(20)));
      if (!message.ok()) return;
      auto decoded = DecodedMessage::Decode(*std::move(message), {});
      if (!decoded.ok() || decoded->envelope().getRequestId() != static_cast<uint64_t>(i)) return;
      ++in_order;
    }
  });
  for (int i = 1; i <= kMessages; ++i) {
    ASSERT_TRUE(sender->Send(RawPing({"receiver"}, "sender", i, 1 << 14, 0), In(absl::Seconds(20))).ok());
  }
  reader.join();
  EXPECT_EQ(in_order.load(), kMessages);
}

}  // namespace
}  // namespace sy::transport
