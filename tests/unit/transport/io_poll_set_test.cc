// IoPollSet, the I/O thread's epoll wait: what fired, only changes reaching the kernel,
// and a descriptor paused by another thread neither waking a waiter nor being reported
// until resumed (then at once if readable), also across Renew.
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "common/transport/io_poll_set.h"

namespace sy::transport {
namespace {

struct Event {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ~Event() { close(fd); }
  void Signal() const {
    const uint64_t one = 1;
    EXPECT_EQ(write(fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  }
};

TEST(IoPollSet, ReportsWhatFiredAndKeepsItUntilTheNextWait) {
  IoPollSet poll;
  ASSERT_TRUE(poll.Open().ok());
  Event a, b;
  poll.Add(a.fd);
  poll.Add(b.fd);
  b.Signal();
  poll.Wait(1000);
  EXPECT_TRUE(poll.Fired(b.fd));
  EXPECT_FALSE(poll.Fired(a.fd));
  EXPECT_TRUE(poll.AnyFired({a.fd, b.fd}));
  // The same set again (nothing changed): b is still readable, level-triggered.
  poll.Clear();
  poll.Add(a.fd);
  poll.Add(b.fd);
  poll.Wait(0);
  EXPECT_TRUE(poll.Fired(b.fd));
  // b left out: no longer reported.
  poll.Clear();
  poll.Add(a.fd);
  poll.Wait(0);
  EXPECT_FALSE(poll.AnyFired());
}

TEST(IoPollSet, APausedDescriptorDoesNotWakeTheWaiterUntilResumed) {
  IoPollSet poll;
  ASSERT_TRUE(poll.Open().ok());
  Event socket, other;
  poll.Add(socket.fd);
  poll.Add(other.fd);
  poll.Wait(0);  // registers both
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    poll.Clear();
    poll.Add(socket.fd);
    poll.Add(other.fd);
    poll.Wait(5000);
    woke = true;
  });
  absl::SleepFor(absl::Milliseconds(20));
  poll.Pause(socket.fd);  // from another thread, the waiter asleep
  socket.Signal();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(woke);  // readable, but paused
  poll.Resume(socket.fd);  // readable now: reported at once
  waiter.join();
  EXPECT_TRUE(woke);
  EXPECT_TRUE(poll.Fired(socket.fd));
}

TEST(IoPollSet, RenewRegistersAfreshAndForgetsPauses) {
  IoPollSet poll;
  ASSERT_TRUE(poll.Open().ok());
  Event socket;
  poll.Add(socket.fd);
  poll.Wait(0);
  poll.Pause(socket.fd);
  socket.Signal();
  poll.Clear();
  poll.Add(socket.fd);
  poll.Wait(0);
  EXPECT_FALSE(poll.Fired(socket.fd));
  poll.Renew();  // e.g. sockets were closed and made: the number may name another socket
  poll.Clear();
  poll.Add(socket.fd);
  poll.Wait(0);
  EXPECT_TRUE(poll.Fired(socket.fd));
  poll.Resume(socket.fd);  // a stale resume after Renew changes nothing
  poll.Wait(0);
  EXPECT_TRUE(poll.Fired(socket.fd));
}

TEST(IoPollSet, PausingBeforeRegistrationRegistersItPaused) {
  IoPollSet poll;
  ASSERT_TRUE(poll.Open().ok());
  Event socket;
  socket.Signal();
  poll.Pause(socket.fd);  // the waiter has not added it yet
  poll.Add(socket.fd);
  poll.Wait(0);
  EXPECT_FALSE(poll.Fired(socket.fd));
  poll.Resume(socket.fd);
  poll.Wait(0);
  EXPECT_TRUE(poll.Fired(socket.fd));
}

}  // namespace
}  // namespace sy::transport
