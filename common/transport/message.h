// A transport message: a Cap'n Proto envelope header frame plus zero or more raw
// tensor data frames, and the peer it goes to or came from.
//
// Frame is an immutable, reference-counted byte buffer: copying a Frame shares the
// bytes, and handing it to ZeroMQ (ToZmq) is zero-copy (zmq_msg_init_data with a
// free callback that drops the reference), but for small frames, which are copied.
// Frames received from ZeroMQ keep the zmq message alive instead of copying it. Frame
// and Message are values: not synchronised; share copies, not references, across threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <zmq.hpp>

namespace sy::transport {

class Frame {
 public:
  Frame();  // empty
  static Frame CopyOf(const void* data, size_t size);
  // Takes ownership of `bytes` without copying.
  static Frame FromVector(std::vector<uint8_t> bytes);
  // Takes ownership of a received zmq message without copying.
  static Frame FromZmq(zmq::message_t message);
  // Shares `owner`'s lifetime; `data` must stay valid while `owner` lives.
  static Frame FromShared(std::shared_ptr<const void> owner, const void* data, size_t size);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // A zmq message referring to these bytes (no copy); it holds a reference until zmq is
  // done. Frames up to kMaxBytesCopiedToZmq bytes are copied instead (cheaper than the reference).
  zmq::message_t ToZmq() const;
  static constexpr size_t kMaxBytesCopiedToZmq = 1024;

 private:
  std::shared_ptr<const void> owner_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// How a message reaches a peer: over the DEALER connected to it, or back through our
// bound ROUTER to a peer that connected to us (its routing id).
enum class Route : uint8_t { kConnected = 0, kBound = 1 };

struct Address {
  std::string peer;  // name given to Connect(), or the sender's routing id (its node id)
  Route route = Route::kConnected;
  bool operator==(const Address& other) const { return peer == other.peer && route == other.route; }
};

struct Message {
  Message() = default;
  Message(Address to, Frame header_frame, std::vector<Frame> data_frames = {})
      : address(std::move(to)), header(std::move(header_frame)), data(std::move(data_frames)) {}

  Address address;           // destination when sending, source when received
  Frame header;              // Cap'n Proto envelope (flat array)
  std::vector<Frame> data;   // tensor bytes, in TensorDesc order
  std::string client_key;    // received over CURVE: the sender's Z85 public key, else empty
  // Received with a cluster allowlist (ZmqOptions.curve.allowlist): who the sender is by its
  // authenticated key (PeerIdentity), never by the body; both empty otherwise.
  std::string peer_role;
  std::string peer_name;

  // Header plus data bytes (what queue byte limits count).
  size_t ByteSize() const;
  // One line for logs: peer, route, frame sizes.
  std::string DebugString() const;
};

}  // namespace sy::transport
