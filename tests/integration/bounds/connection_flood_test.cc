// A real sy-expert-host under --insecure, where anyone who reaches its port may open
// connections: with --max_connections=8, a flood of raw TCP connections (no ZeroMQ
// spoken) is held to 8 — those beyond are shut down by the host — and once the flood
// goes the host still answers a real client. Bounded: a fixed count of connections,
// every wait limited.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <capnp/message.h>

#include "absl/time/clock.h"
#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "proto/envelope.capnp.h"
#include "tests/integration/bounds/rss_probe.h"
#include "tests/unit/transport/raw_tcp.h"
#include "tests/unit/transport/wait.h"

namespace sy {
namespace {

namespace fs = std::filesystem;

constexpr int kCap = 8, kFlood = 64;

TEST(ConnectionFloodTest, AnInsecureHostHoldsTheCapAndServesAfterTheFlood) {
  const std::string dir = (fs::temp_directory_path() / ("sy-flood-" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string ready = dir + "/ready";
  std::string endpoint;
  const pid_t pid = testing::SpawnUntilReady(
      {SY_EXPERT_HOST_PATH, "--listen=tcp://127.0.0.1:0", "--ready_file=" + ready, "--host_index=0", "--num_hosts=1",
       "--metrics_port=-1", "--threads=1", "--insecure", "--max_connections=" + std::to_string(kCap)},
      ready, &endpoint);
  ASSERT_GT(pid, 0) << "sy-expert-host did not become ready";

  std::vector<int> raw;
  for (int i = 0; i < kFlood; ++i) {
    const int fd = transport::testing::ConnectRaw(endpoint);
    if (fd >= 0) raw.push_back(fd);
  }
  EXPECT_EQ(raw.size(), size_t{kFlood});
  std::vector<bool> closed(raw.size(), false);
  size_t shut = 0;
  EXPECT_TRUE(transport::testing::WaitUntil([&] {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (!closed[i] && transport::testing::ClosedByPeer(raw[i])) {
        closed[i] = true;
        ++shut;
      }
    }
    return shut + kCap >= raw.size();
  })) << shut << " of " << raw.size() << " connections shut down by the host";
  EXPECT_EQ(shut + kCap, raw.size());  // the cap's worth stay open
  for (int fd : raw) ::close(fd);

  transport::ZmqOptions zmq;
  zmq.node_id = "trainer-0";
  auto client_transport = transport::ZmqTransport::Create(zmq);
  ASSERT_TRUE(client_transport.ok());
  ASSERT_TRUE((*client_transport)->Connect("host-0", endpoint).ok());
  auto client = transport::RpcNode::Create(*std::move(client_transport), {}, nullptr);
  ASSERT_TRUE(client.ok());
  capnp::MallocMessageBuilder ping;
  ping.initRoot<proto::Envelope>().setKind(proto::MessageKind::PING);
  auto reply = (*client)->Call({"host-0"}, ping, {}, absl::Now() + absl::Seconds(20));
  EXPECT_TRUE(reply.ok()) << reply.status();
  (*client)->Close();
  testing::Terminate(pid);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sy
