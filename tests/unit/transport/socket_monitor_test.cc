// ZmqTransport's connection monitor: a peer that goes away is reported once its
// connection drops, naming the peer and endpoint it was connected as.
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

TEST(SocketMonitor, ReportsTheConnectionOfAPeerThatClosed) {
  ZmqOptions server_options;
  server_options.node_id = "server";
  auto server_transport = *ZmqTransport::Create(server_options);
  const std::string endpoint = *server_transport->Bind("tcp://127.0.0.1:*");
  auto server = *RpcNode::Create(std::move(server_transport), {}, testing::EchoHandler);

  auto log = std::make_shared<LostLog>();
  ZmqOptions client_options;
  client_options.node_id = "client";
  client_options.on_connection_lost = [log](const ConnectionLost& lost) {
    absl::MutexLock lock(&log->mu);
    log->lost.push_back(lost);
  };
  auto client_transport = *ZmqTransport::Create(client_options);
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

TEST(SocketMonitor, TransportsWithoutACallbackWatchNothingAndCloseCleanly) {
  ZmqOptions options;
  options.node_id = "plain";
  auto transport = *ZmqTransport::Create(options);
  ASSERT_TRUE(transport->Connect("nobody", "tcp://127.0.0.1:9").ok());
  transport->Close();
}

}  // namespace
}  // namespace sy::transport
