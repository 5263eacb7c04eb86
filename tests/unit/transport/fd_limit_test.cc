// A process that serves peers raises its soft open-file limit to the hard one, so a
// thousand connections do not lock new peers out; creating a ZeroMQ transport does it.
#include <sys/resource.h>

#include <gtest/gtest.h>

#include "common/transport/fd_limit.h"
#include "common/transport/zmq_transport.h"

namespace sy::transport {
namespace {

rlimit Current() {
  rlimit limit{};
  EXPECT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  return limit;
}

TEST(FdLimit, RaisesTheSoftLimitToTheHardOne) {
  rlimit lowered = Current();
  if (lowered.rlim_max < 128) GTEST_SKIP() << "hard open-file limit " << lowered.rlim_max << " is too low to test";
  lowered.rlim_cur = 64;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  absl::StatusOr<uint64_t> raised = RaiseOpenFileLimit();
  ASSERT_TRUE(raised.ok()) << raised.status();
  EXPECT_EQ(*raised, static_cast<uint64_t>(lowered.rlim_max));
  EXPECT_EQ(Current().rlim_cur, lowered.rlim_max);
}

TEST(FdLimit, CreatingAZmqTransportRaisesIt) {
  rlimit lowered = Current();
  if (lowered.rlim_max < 128) GTEST_SKIP() << "hard open-file limit " << lowered.rlim_max << " is too low to test";
  lowered.rlim_cur = 64;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  ZmqOptions options;
  options.node_id = "fd-limit";
  absl::StatusOr<std::unique_ptr<ZmqTransport>> transport = ZmqTransport::Create(options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  EXPECT_EQ(Current().rlim_cur, lowered.rlim_max);
}

}  // namespace
}  // namespace sy::transport
