// Switchyard's threads carry names the kernel shows (top -H, perf, /proc/PID/task/TID/comm):
// NameThisThread itself, and the threads of the actor runtime and the ZeroMQ transport.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "common/actor/runtime.h"
#include "common/base/thread_name.h"
#include "common/transport/zmq_transport.h"

namespace sy {
namespace {

std::string CommOf(const std::filesystem::path& task) {
  std::ifstream comm(task / "comm");
  std::string name;
  std::getline(comm, name);
  return name;
}

// How many threads of this process carry `name`.
int ThreadsNamed(const std::string& name) {
  int count = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) count += CommOf(task.path()) == name;
  return count;
}

// A new thread names itself once it runs: waits (at most 5 s) until `count` threads carry `name`.
int WaitForThreadsNamed(const std::string& name, int count) {
  for (int i = 0; i < 500 && ThreadsNamed(name) < count; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return ThreadsNamed(name);
}

TEST(ThreadNamesTest, NamesTheCallingThreadAndCutsALongNameAtFifteenCharacters) {
  std::string short_name, long_name;
  std::thread([&] {
    const std::filesystem::path self = "/proc/self/task/" + std::to_string(gettid());
    base::NameThisThread("sy-test");
    short_name = CommOf(self);
    base::NameThisThread("a-name-longer-than-fifteen");
    long_name = CommOf(self);
  }).join();
  EXPECT_EQ(short_name, "sy-test");
  EXPECT_EQ(long_name, "a-name-longer-t");
}

TEST(ThreadNamesTest, TheActorRuntimeAndTheTransportNameTheirThreads) {
  const int actors_before = ThreadsNamed("sy-actors"), io_before = ThreadsNamed("sy-io");
  {
    actor::Runtime runtime(3);
    transport::ZmqOptions options;
    options.node_id = "named";
    absl::StatusOr<std::unique_ptr<transport::ZmqTransport>> zmq = transport::ZmqTransport::Create(options);
    ASSERT_TRUE(zmq.ok()) << zmq.status();
    EXPECT_EQ(WaitForThreadsNamed("sy-actors", actors_before + 3), actors_before + 3);
    EXPECT_EQ(WaitForThreadsNamed("sy-io", io_before + 1), io_before + 1);
    (*zmq)->Close();
  }
}

}  // namespace
}  // namespace sy
