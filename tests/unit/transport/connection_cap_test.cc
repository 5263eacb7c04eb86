// ZmqTransport's connection cap over real loopback sockets: raw TCP connections beyond
// --max_connections (an insecure door, no handshake needed to open them) are shut down
// and counted in sy_refused_total{reason="connections"}, the ones within it stay open,
// and once they go the server serves a real client again.
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/metrics/registry.h"
#include "common/transport/fd_limit.h"
#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "tests/unit/transport/raw_tcp.h"
#include "tests/unit/transport/testing.h"
#include "tests/unit/transport/wait.h"

namespace sy::transport {
namespace {

constexpr size_t kCap = 4;
constexpr int kRawConnections = 10;

double Refused(metrics::Registry& registry) {
  return registry.GetCounter("sy_refused_total", "", {{"reason", "connections"}}).value();
}

TEST(ConnectionCap, ConnectionsBeyondTheCapAreShutDownAndCountedAndAClientIsServedAfter) {
  metrics::Registry registry;
  ZmqOptions options;
  options.node_id = "server";
  options.max_connections = kCap;
  options.metrics = &registry;
  auto transport = *ZmqTransport::Create(options);
  const std::string endpoint = *transport->Bind("tcp://127.0.0.1:*");
  auto server = *RpcNode::Create(std::move(transport), {}, testing::EchoHandler);

  std::vector<int> raw;
  for (int i = 0; i < kRawConnections; ++i) {
    const int fd = testing::ConnectRaw(endpoint);
    ASSERT_GE(fd, 0) << "connection " << i;
    raw.push_back(fd);
  }
  const size_t beyond = kRawConnections - kCap;
  ASSERT_TRUE(testing::WaitUntil([&] { return Refused(registry) >= beyond; }));
  std::vector<bool> closed(raw.size(), false);
  ASSERT_TRUE(testing::WaitUntil([&] {
    size_t count = 0;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (!closed[i]) closed[i] = testing::ClosedByPeer(raw[i]);
      count += closed[i] ? 1 : 0;
    }
    return count >= beyond;
  }));
  size_t open = 0;
  for (size_t i = 0; i < raw.size(); ++i) open += (closed[i] || testing::ClosedByPeer(raw[i])) ? 0 : 1;
  EXPECT_EQ(open, kCap);  // the ones within the cap stay
  EXPECT_EQ(Refused(registry), beyond);

  for (int fd : raw) ::close(fd);
  // A real client now: its connection fits once the server saw the raw ones go (before
  // that it may be shut down too, and ZeroMQ reconnects it).
  ZmqOptions client_options;
  client_options.node_id = "client";
  auto client_transport = *ZmqTransport::Create(client_options);
  ASSERT_TRUE(client_transport->Connect("server", endpoint).ok());
  auto client = *RpcNode::Create(std::move(client_transport), {}, nullptr);
  testing::Request request;
  testing::FillPing(request, 1, 1.0f);
  EXPECT_TRUE(client->Call({"server"}, request.header, request.data, absl::Now() + absl::Seconds(20)).ok());
}

TEST(ConnectionCap, TheCapStaysWithinTheOpenFileLimit) {
  ASSERT_TRUE(RaiseOpenFileLimit().ok());
  EXPECT_EQ(ConnectionsWithinOpenFileLimit(16), 16u);
  const size_t most = ConnectionsWithinOpenFileLimit(SIZE_MAX);
  EXPECT_LT(most, SIZE_MAX);
  EXPECT_EQ(ConnectionsWithinOpenFileLimit(most + 1), most);
}

}  // namespace
}  // namespace sy::transport
