// Two real processes over tcp://127.0.0.1: this test spawns transport_echo_server,
// which binds a free port and prints it, then exchanges requests with it.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "tests/unit/transport/testing.h"
#include "tests/unit/transport/wait.h"

extern char** environ;

namespace sy::transport {
namespace {

using testing::FillPing;
using testing::Request;

absl::Time In(absl::Duration d) { return absl::Now() + d; }

// The echo server child: started with pipes on stdin/stdout, killed if still alive at the end.
class EchoServerProcess {
 public:
  EchoServerProcess() {
    int to_child[2], from_child[2];
    EXPECT_EQ(pipe(to_child), 0);
    EXPECT_EQ(pipe(from_child), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
    posix_spawn_file_actions_addclose(&actions, to_child[1]);
    posix_spawn_file_actions_addclose(&actions, from_child[0]);
    char path[] = SY_ECHO_SERVER_PATH;
    char endpoint[] = "tcp://127.0.0.1:*";
    char* argv[] = {path, endpoint, nullptr};
    EXPECT_EQ(posix_spawn(&pid_, path, &actions, nullptr, argv, environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(to_child[0]);
    close(from_child[1]);
    stdin_fd_ = to_child[1];
    stdout_ = fdopen(from_child[0], "r");
    char line[256] = {0};
    if (stdout_ != nullptr && std::fgets(line, sizeof(line), stdout_) != nullptr &&
        std::strncmp(line, "ENDPOINT ", 9) == 0) {
      endpoint_ = std::string(line + 9);
      while (!endpoint_.empty() && (endpoint_.back() == '\n' || endpoint_.back() == '\r')) endpoint_.pop_back();
    }
  }
  ~EchoServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdin_fd_ >= 0) close(stdin_fd_);
    if (stdout_ != nullptr) fclose(stdout_);
  }
  const std::string& endpoint() const { return endpoint_; }
  // Closes the child's stdin (its signal to exit) and returns its exit status.
  int Stop() {
    close(stdin_fd_);
    stdin_fd_ = -1;
    int status = -1;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  void Kill() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  FILE* stdout_ = nullptr;
  std::string endpoint_;
};

std::unique_ptr<RpcNode> ConnectClient(const std::string& endpoint, RpcOptions options = {}) {
  ZmqOptions zmq_options;
  zmq_options.node_id = "client-" + std::to_string(getpid());
  auto transport = ZmqTransport::Create(zmq_options);
  EXPECT_TRUE(transport.ok());
  EXPECT_TRUE((*transport)->Connect("echo", endpoint).ok());
  return *RpcNode::Create(*std::move(transport), options, nullptr);
}

TEST(TwoProcesses, RequestsAndConcurrentCallsAreAnswered) {
  EchoServerProcess server;
  ASSERT_FALSE(server.endpoint().empty()) << "echo server did not report its endpoint";
  auto client = ConnectClient(server.endpoint());

  for (size_t count : {size_t{0}, size_t{7}, size_t{4096}, size_t{1} << 18}) {
    Request request;
    FillPing(request, count, 1.5f);
    auto reply = client->Call({"echo"}, request.header, request.data, In(absl::Seconds(20)));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(std::string(reply->envelope().getSender().cStr()), "echo-server");
    if (count > 0) {
      ASSERT_EQ(reply->data(0).size(), count * 4);
      EXPECT_EQ(std::memcmp(reply->data(0).data(), request.data[0].data(), count * 4), 0);
    }
  }

  // 200 calls in flight at once, each matched to its own reply by request id.
  constexpr int kCalls = 200;
  std::atomic<int> matched{0}, finished{0};
  for (int i = 0; i < kCalls; ++i) {
    Request request;
    FillPing(request, 16, static_cast<float>(i));
    client->CallAsync({"echo"}, request.header, request.data, In(absl::Seconds(20)),
                      [&matched, &finished, i](absl::StatusOr<DecodedMessage> reply) {
                        float first = -1;
                        if (reply.ok()) std::memcpy(&first, reply->data(0).data(), sizeof(first));
                        if (first == static_cast<float>(i)) ++matched;
                        ++finished;
                      });
  }
  ASSERT_TRUE(testing::WaitUntil([&] { return finished.load() == kCalls; }));
  EXPECT_EQ(matched.load(), kCalls);

  const int status = server.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "echo server exit status " << status;
}

TEST(TwoProcesses, KilledServerEndsPendingCallsWithDeadlineExceeded) {
  EchoServerProcess server;
  ASSERT_FALSE(server.endpoint().empty());
  RpcOptions options;
  options.attempt_timeout = absl::Milliseconds(20);
  auto client = ConnectClient(server.endpoint(), options);
  Request warmup;
  FillPing(warmup, 4, 0);
  ASSERT_TRUE(client->Call({"echo"}, warmup.header, warmup.data, In(absl::Seconds(20))).ok());

  server.Kill();
  Request request;
  FillPing(request, 4, 0);
  auto reply = client->Call({"echo"}, request.header, request.data, In(absl::Milliseconds(300)));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded) << reply.status();
}

}  // namespace
}  // namespace sy::transport
