// ZmqTransport's connection monitor: a peer that goes away is reported once its
// connection drops, naming the peer and endpoint it was connected as; a peer we
// disconnected from is closed and forgotten, not reported.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "tests/unit/transport/testing.h"
#include "tests/unit/transport/wait.h"

namespace sy::transport {
namespace {

struct LostLog {
  absl::Mutex mu;
  std::vector<ConnectionLost> lost ABSL_GUARDED_BY(mu);
  size_t size() {
    absl::MutexLock lock(&mu);
    return lost.size();
  }
};

// An echo server on a free loopback port; its endpoint goes to *endpoint.
std::unique_ptr<RpcNode> EchoServer(std::string* endpoint) {
  ZmqOptions options;
  options.node_id = "server";
  auto transport = *ZmqTransport::Create(options);
  *endpoint = *transport->Bind("tcp://127.0.0.1:*");
  return *RpcNode::Create(std::move(transport), {}, testing::EchoHandler);
}

// A client transport whose lost connections are appended to `log`.
std::unique_ptr<ZmqTransport> WatchingClient(std::shared_ptr<LostLog> log) {
  ZmqOptions options;
  options.node_id = "client";
  options.on_connection_lost = [log](const ConnectionLost& lost) {
    absl::MutexLock lock(&log->mu);
    log->lost.push_back(lost);
  };
  return *ZmqTransport::Create(options);
}

TEST(SocketMonitor, ReportsTheConnectionOfAPeerThatClosed) {
  std::string endpoint;
  auto server = EchoServer(&endpoint);
  auto log = std::make_shared<LostLog>();
  auto client_transport = WatchingClient(log);
  ASSERT_TRUE(client_transport->Connect("server@1", endpoint).ok());
  auto client = *RpcNode::Create(std::move(client_transport), {}, nullptr);
  testing::Request request;
  testing::FillPing(request, 1, 1.0f);
  ASSERT_TRUE(client->Call({"server@1"}, request.header, request.data, absl::Now() + absl::Seconds(10)).ok());
  EXPECT_EQ(log->size(), 0u);  // a served request: the connection is up

  server->Close();  // the peer goes away: its socket closes its connections
  ASSERT_TRUE(testing::WaitUntil([&] { return log->size() > 0; }));
  absl::MutexLock lock(&log->mu);
  EXPECT_EQ(log->lost[0].peer, "server@1");
  EXPECT_EQ(log->lost[0].endpoint, endpoint);
}

TEST(SocketMonitor, ADisconnectedPeerIsForgottenNotReported) {
  std::string endpoint;
  auto server = EchoServer(&endpoint);
  auto log = std::make_shared<LostLog>();
  auto client_transport = WatchingClient(log);
  ZmqTransport* raw = client_transport.get();
  ASSERT_TRUE(raw->Connect("server@1", endpoint).ok());
  auto client = *RpcNode::Create(std::move(client_transport), {}, nullptr);
  testing::Request request;
  testing::FillPing(request, 1, 1.0f);
  ASSERT_TRUE(client->Call({"server@1"}, request.header, request.data, absl::Now() + absl::Seconds(10)).ok());
  EXPECT_EQ(raw->stats().connected_peers, 1u);

  ASSERT_TRUE(raw->Disconnect("server@1").ok());
  EXPECT_EQ(raw->stats().connected_peers, 0u);
  EXPECT_EQ(raw->Disconnect("server@1").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client->Call({"server@1"}, request.header, request.data, absl::Now() + absl::Seconds(2)).status().code(),
            absl::StatusCode::kNotFound);
  server->Close();  // its connection is gone already: nothing to report
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(log->size(), 0u);
  // The same name connects again, and is watched again.
  std::string endpoint2;
  auto server2 = EchoServer(&endpoint2);
  ASSERT_TRUE(raw->Connect("server@1", endpoint2).ok());
  ASSERT_TRUE(client->Call({"server@1"}, request.header, request.data, absl::Now() + absl::Seconds(10)).ok());
  server2->Close();
  ASSERT_TRUE(testing::WaitUntil([&] { return log->size() > 0; }));
  absl::MutexLock lock(&log->mu);
  EXPECT_EQ(log->lost[0].endpoint, endpoint2);
}

TEST(SocketMonitor, TransportsWithoutACallbackWatchNothingAndCloseCleanly) {
  ZmqOptions options;
  options.node_id = "plain";
  auto transport = *ZmqTransport::Create(options);
  ASSERT_TRUE(transport->Connect("nobody", "tcp://127.0.0.1:9").ok());
  transport->Close();
}

}  // namespace
}  // namespace sy::transport
