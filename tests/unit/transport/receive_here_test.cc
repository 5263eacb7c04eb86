// A thread waiting for one message reads its connection itself (Transport::ReceiveHere,
// used by the blocking RpcNode::Call): what it takes, what it leaves to the I/O thread
// (delivered there, in order), the fallbacks where it cannot, and the ReplyWaiter the
// call waits on.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "common/transport/inproc_transport.h"
#include "common/transport/reply_waiter.h"
#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "tests/unit/transport/testing.h"
#include "tests/unit/transport/wait.h"

namespace sy::transport {
namespace {

using testing::WaitUntil;

absl::Time In(absl::Duration d) { return absl::Now() + d; }

std::unique_ptr<ZmqTransport> MakeTransport(const std::string& node_id) {
  ZmqOptions options;
  options.node_id = node_id;
  auto transport = ZmqTransport::Create(options);
  EXPECT_TRUE(transport.ok()) << transport.status();
  return *std::move(transport);
}

Message Text(const Address& to, const std::string& text) { return Message{to, Frame::CopyOf(text.data(), text.size())}; }

std::string TextOf(const Message& message) {
  return std::string(reinterpret_cast<const char*>(message.header.data()), message.header.size());
}

// An eventfd closed with the test.
struct EventFd {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ~EventFd() { close(fd); }
};

// A connected pair whose client's receiver on its I/O thread holds on to the first message
// ("gate") until released, so while it does, only a waiting caller can read the socket.
// SetUp connects, installs the receiver and has the server send the gate over the client's
// connection, whose address on the server is to_client (its own requests go there).
class GatedClient : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(client->Connect("server", endpoint).ok());
    ASSERT_TRUE(client->DeliverOnIoThread([this](Message message) {
      const std::string text = TextOf(message);
      {
        std::lock_guard<std::mutex> lock(mu);
        delivered.push_back(text);
        delivered_on.push_back(std::this_thread::get_id());
      }
      if (text == "gate") {
        gate_reached.Notify();
        release.WaitForNotification();
      }
    }));
    ASSERT_TRUE(client->Send(Text({"server"}, "hello"), In(absl::Seconds(5))).ok());
    absl::StatusOr<Message> hello = server->Receive(In(absl::Seconds(5)));
    ASSERT_TRUE(hello.ok()) << hello.status();
    to_client = hello->address;
    ASSERT_TRUE(server->Send(Text(to_client, "gate"), In(absl::Seconds(5))).ok());
    ASSERT_TRUE(gate_reached.WaitForNotificationWithTimeout(absl::Seconds(5)));
  }

  void TearDown() override {
    if (!release.HasBeenNotified()) release.Notify();  // else closing the client would wait forever
  }

  size_t Count() {
    std::lock_guard<std::mutex> lock(mu);
    return delivered.size();
  }

  std::unique_ptr<ZmqTransport> server = MakeTransport("server");
  const std::string endpoint = *server->Bind("tcp://127.0.0.1:*");
  std::unique_ptr<ZmqTransport> client = MakeTransport("client");
  Address to_client;
  std::mutex mu;
  std::vector<std::string> delivered;
  std::vector<std::thread::id> delivered_on;
  absl::Notification gate_reached, release;
};

TEST_F(GatedClient, TakesWhatTheCallerWantsAndLeavesTheRestToTheIoThreadInOrder) {
  for (const char* text : {"a", "b", "c"}) ASSERT_TRUE(server->Send(Text(to_client, text), In(absl::Seconds(5))).ok());

  EventFd wake;
  std::optional<Message> taken;
  auto mine = [](const Message& message) { return TextOf(message) == "b"; };
  const absl::Time deadline = In(absl::Seconds(5));
  while (!taken.has_value() && absl::Now() < deadline) {
    ASSERT_TRUE(client->ReceiveHere("server", wake.fd, deadline, mine, &taken));
  }
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(TextOf(*taken), "b");
  EXPECT_EQ(taken->address.peer, "server");
  release.Notify();

  ASSERT_TRUE(WaitUntil([&] { return Count() == 3; }));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(delivered, (std::vector<std::string>{"gate", "a", "c"}));
  EXPECT_EQ(delivered_on[1], delivered_on[0]);  // on the I/O thread, like the gate
  EXPECT_EQ(delivered_on[2], delivered_on[0]);
  EXPECT_EQ(client->stats().received_here, 1u);
  EXPECT_EQ(client->stats().received, 4u);
}

TEST(ReceiveHere, ReturnsWhenTheWakeDescriptorFiresOrAtTheDeadline) {
  auto server = MakeTransport("server");
  auto client = MakeTransport("client");
  ASSERT_TRUE(client->Connect("server", *server->Bind("tcp://127.0.0.1:*")).ok());
  ASSERT_TRUE(client->DeliverOnIoThread([](Message) {}));
  EventFd wake;
  std::optional<Message> taken;
  auto nothing = [](const Message&) { return false; };
  const absl::Time start = absl::Now();
  ASSERT_TRUE(client->ReceiveHere("server", wake.fd, start + absl::Milliseconds(50), nothing, &taken));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
  EXPECT_FALSE(taken.has_value());

  std::thread waker([&] {
    absl::SleepFor(absl::Milliseconds(20));
    const uint64_t one = 1;
    EXPECT_EQ(write(wake.fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  });
  ASSERT_TRUE(client->ReceiveHere("server", wake.fd, In(absl::Seconds(30)), nothing, &taken));
  waker.join();
  EXPECT_FALSE(taken.has_value());
}

TEST(ReceiveHere, IsDeclinedWithoutAReceiverOnTheIoThreadAndOnOtherTransports) {
  auto client = MakeTransport("client");
  EventFd wake;
  std::optional<Message> taken;
  auto any = [](const Message&) { return true; };
  EXPECT_FALSE(client->ReceiveHere("server", wake.fd, In(absl::Seconds(1)), any, &taken));  // Receive's queue
  InProcNetwork network;
  auto inproc = network.CreateTransport("a");
  ASSERT_TRUE(inproc.ok()) << inproc.status();
  EXPECT_FALSE((*inproc)->ReceiveHere("b", wake.fd, In(absl::Seconds(1)), any, &taken));
}

// Blocking calls over ZeroMQ read their replies on the calling thread; calls made
// asynchronously at the same time still get theirs on the I/O thread, whoever reads them.
TEST(ReceiveHere, BlockingCallsReadTheirRepliesBesideAsynchronousCalls) {
  auto server_transport = MakeTransport("server");
  const std::string endpoint = *server_transport->Bind("tcp://127.0.0.1:*");
  auto server = *RpcNode::Create(std::move(server_transport), {}, testing::EchoHandler);
  auto client_transport = MakeTransport("client");
  ASSERT_TRUE(client_transport->Connect("server", endpoint).ok());
  auto client = *RpcNode::Create(std::move(client_transport), {}, nullptr);

  std::atomic<int> async_issued{0}, async_ok{0}, async_failed{0};
  std::atomic<bool> stop{false};
  std::thread async_caller([&] {
    for (int i = 0; i < 300 && !stop; ++i) {
      ++async_issued;
      testing::Request request;
      testing::FillPing(request, 16, static_cast<float>(i));
      client->CallAsync({"server"}, request.header, request.data, In(absl::Seconds(10)),
                        [&](absl::StatusOr<DecodedMessage> reply) { (reply.ok() ? async_ok : async_failed)++; });
      absl::SleepFor(absl::Microseconds(100));
    }
  });
  for (int i = 0; i < 300; ++i) {
    testing::Request request;
    testing::FillPing(request, 64, static_cast<float>(i));
    auto reply = client->Call({"server"}, request.header, request.data, In(absl::Seconds(10)));
    ASSERT_TRUE(reply.ok()) << reply.status();
    ASSERT_EQ(reply->data(0).size(), 64u * 4);
    EXPECT_EQ(std::memcmp(reply->data(0).data(), request.data[0].data(), 64 * 4), 0);
  }
  stop = true;
  async_caller.join();
  ASSERT_TRUE(WaitUntil([&] { return async_ok + async_failed == async_issued; }));
  EXPECT_GT(async_issued, 0);
  EXPECT_EQ(async_failed, 0);
  // The calling thread and the I/O thread both wait on the socket; over 300 calls the
  // caller reads some replies itself.
  EXPECT_GT(client->transport().stats().received_here, 0u);
}

// A send from a thread that reads the connection next (SendBeforeReceiveHere, a blocking
// call's request) may take libzmq's signal of input that came just before it; then the
// I/O thread's wait never reports that input, and the read that follows must find it.
// Here the input is a request of the peer's own ("push"), as the coordinator sends a
// trainer over the trainer's connection, and the I/O thread is held in its receiver
// ("gate") while it comes, so it can only learn of the push from the signal or the read.
TEST_F(GatedClient, FindsWhatCameBeforeASendThatLeftItToTheRead) {
  ASSERT_TRUE(server->Send(Text(to_client, "push"), In(absl::Seconds(5))).ok());
  absl::SleepFor(absl::Milliseconds(100));  // the push reaches the client's socket

  ASSERT_TRUE(client->SendBeforeReceiveHere(Text({"server"}, "request"), In(absl::Seconds(5))).ok());
  EventFd wake;
  std::optional<Message> taken;
  auto nothing = [](const Message&) { return false; };
  ASSERT_TRUE(client->ReceiveHere("server", wake.fd, In(absl::Milliseconds(50)), nothing, &taken));
  EXPECT_FALSE(taken.has_value());
  release.Notify();
  EXPECT_TRUE(WaitUntil([&] { return Count() == 2; }));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(delivered, (std::vector<std::string>{"gate", "push"}));
  absl::StatusOr<Message> request = server->Receive(In(absl::Seconds(5)));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(TextOf(*request), "request");
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

// The waiter's eventfd is its thread's, kept across calls; only a setter on another thread
// writes it, so a call whose reply the waiting thread read itself leaves nothing behind.
TEST(ReplyWaiter, IsWokenFromOtherThreadsOnlyAndKeepsTheThreadsDescriptor) {
  auto first = std::make_shared<ReplyWaiter>();
  ASSERT_GE(first->fd(), 0);
  first->Set(absl::DeadlineExceededError("set here"));
  EXPECT_FALSE(Readable(first->fd()));
  EXPECT_TRUE(first->Done());
  EXPECT_TRUE(absl::IsDeadlineExceeded(first->Wait().status()));

  auto second = std::make_shared<ReplyWaiter>();
  EXPECT_EQ(second->fd(), first->fd());
  EXPECT_FALSE(second->Done());
  std::thread setter([second] { second->Set(absl::CancelledError("set elsewhere")); });
  setter.join();
  EXPECT_TRUE(Readable(second->fd()));
  second->Drain();
  EXPECT_FALSE(Readable(second->fd()));
  EXPECT_TRUE(absl::IsCancelled(second->Wait().status()));

  int other_thread_fd = -1;  // read while both descriptors are open
  std::thread([&] { other_thread_fd = ReplyWaiter().fd(); }).join();
  EXPECT_GE(other_thread_fd, 0);
  EXPECT_NE(other_thread_fd, first->fd());
}

}  // namespace
}  // namespace sy::transport
