// Frame ownership plumbing (shared buffers, zero-copy hand-off to ZeroMQ) and Message helpers.
#include "common/transport/message.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sy::transport {

Frame::Frame() = default;

Frame Frame::CopyOf(const void* data, size_t size) {
  std::vector<uint8_t> bytes(size);
  if (size > 0) std::memcpy(bytes.data(), data, size);
  return FromVector(std::move(bytes));
}

Frame Frame::FromVector(std::vector<uint8_t> bytes) {
  auto owner = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  const uint8_t* data = owner->data();
  const size_t size = owner->size();
  return FromShared(std::move(owner), data, size);
}

Frame Frame::FromZmq(zmq::message_t message) {
  auto owner = std::make_shared<zmq::message_t>(std::move(message));
  const void* data = owner->data();
  const size_t size = owner->size();
  return FromShared(std::move(owner), data, size);
}

Frame Frame::FromShared(std::shared_ptr<const void> owner, const void* data, size_t size) {
  Frame frame;
  frame.owner_ = std::move(owner);
  frame.data_ = static_cast<const uint8_t*>(data);
  frame.size_ = size;
  return frame;
}

zmq::message_t Frame::ToZmq() const {
  if (size_ == 0) return zmq::message_t();
  // A small frame (an envelope header) is copied: one allocation in libzmq, or none up
  // to 33 bytes, where lending it costs two (the reference below and libzmq's record of it).
  if (size_ <= kMaxBytesCopiedToZmq) return zmq::message_t(data_, size_);
  // The hint keeps one reference to the owner until zmq calls the free function.
  auto* hint = new std::shared_ptr<const void>(owner_);
  return zmq::message_t(
      const_cast<uint8_t*>(data_), size_,
      [](void*, void* h) { delete static_cast<std::shared_ptr<const void>*>(h); }, hint);
}

size_t Message::ByteSize() const {
  size_t total = header.size();
  for (const Frame& frame : data) total += frame.size();
  return total;
}

std::string Message::DebugString() const {
  std::string out = absl::StrCat("peer=", address.peer,
                                 address.route == Route::kBound ? " (bound)" : " (connected)",
                                 " header=", header.size(), "B data=[");
  for (size_t i = 0; i < data.size(); ++i) absl::StrAppend(&out, i ? "," : "", data[i].size(), "B");
  absl::StrAppend(&out, "]");
  return out;
}

}  // namespace sy::transport
