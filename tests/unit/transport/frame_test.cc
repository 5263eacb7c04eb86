// Frame's hand-off to ZeroMQ: a large frame is lent (the zmq message points at the
// frame's bytes and keeps their owner alive until libzmq lets go), a small one is copied
// (the same bytes in the message's own storage, no reference kept).
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include <gtest/gtest.h>

#include "common/transport/message.h"

namespace sy::transport {
namespace {

// A frame of `size` bytes 0, 1, 2, ... whose owner `watch` observes.
Frame Numbered(size_t size, std::weak_ptr<const void>* watch) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(size);
  for (size_t i = 0; i < size; ++i) (*bytes)[i] = static_cast<uint8_t>(i);
  *watch = bytes;
  const uint8_t* data = bytes->data();
  return Frame::FromShared(std::move(bytes), data, size);
}

TEST(Frame, ALargeFrameIsLentToZeroMqAndKeptAliveUntilReleased) {
  std::weak_ptr<const void> owner;
  std::optional<zmq::message_t> message;
  {
    const Frame frame = Numbered(Frame::kMaxBytesCopiedToZmq + 1, &owner);
    message.emplace(frame.ToZmq());
    EXPECT_EQ(message->data(), static_cast<const void*>(frame.data()));  // lent, not copied
  }
  EXPECT_FALSE(owner.expired()) << "the message still refers to the bytes";
  ASSERT_EQ(message->size(), Frame::kMaxBytesCopiedToZmq + 1);
  EXPECT_EQ(static_cast<const uint8_t*>(message->data())[300], 300 % 256);
  message.reset();
  EXPECT_TRUE(owner.expired()) << "released with the message";
}

TEST(Frame, ASmallFrameIsCopiedAndHoldsNoReference) {
  for (size_t size : {size_t{1}, size_t{33}, size_t{34}, Frame::kMaxBytesCopiedToZmq}) {
    SCOPED_TRACE(size);
    std::weak_ptr<const void> owner;
    std::optional<zmq::message_t> message;
    std::vector<uint8_t> expected;
    {
      const Frame frame = Numbered(size, &owner);
      expected.assign(frame.data(), frame.data() + frame.size());
      message.emplace(frame.ToZmq());
      EXPECT_NE(message->data(), static_cast<const void*>(frame.data()));
    }
    EXPECT_TRUE(owner.expired()) << "a copy keeps no reference";
    ASSERT_EQ(message->size(), size);
    EXPECT_EQ(std::memcmp(message->data(), expected.data(), size), 0);
  }
}

TEST(Frame, AnEmptyFrameIsAnEmptyMessage) {
  EXPECT_EQ(Frame().ToZmq().size(), 0u);
}

}  // namespace
}  // namespace sy::transport
