// FrameMessage: a Cap'n Proto message carried in a data frame instead of the header.
//
// A header holds metadata only (EnvelopeLimits::max_header_bytes); a payload that grows
// with the run or the cluster (e.g. an admin listing of every step) travels as a data
// frame holding one whole message, and the receiver reads it through FrameMessage,
// which checks it at the door the way DecodedMessage checks a header: a whole number
// of 8-byte words (an unaligned frame is copied), at most max_message_bytes, Cap'n
// Proto structure under a traversal budget sized to the frame, and every field of the
// root struct read once (texts, list element types). Any failure is InvalidArgument;
// nothing is thrown.
//
// Thread-compatible: a FrameMessage is a value owned by one thread at a time.
//
//   auto bulk = FrameMessage<proto::admin::AdminReply>::Decode(reply.data(0), limits);
//   if (bulk.ok()) for (auto step : bulk->root().getHostLoadSeries()) ...
#pragma once

#include <memory>
#include <utility>

#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/array.h>

#include "absl/status/statusor.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/message.h"

namespace sy::transport {

// Checks `frame` as one message whose root is struct `schema` (see the file comment)
// and opens it for reading with a whole traversal budget. `aligned_copy` receives the
// frame's words when the frame is not 8-byte aligned; it must outlive the reader.
absl::StatusOr<std::unique_ptr<capnp::FlatArrayMessageReader>> OpenFrameMessage(const Frame& frame,
                                                                                 capnp::StructSchema schema,
                                                                                 const EnvelopeLimits& limits,
                                                                                 kj::Array<capnp::word>& aligned_copy);

template <typename T>
class FrameMessage {
 public:
  static absl::StatusOr<FrameMessage> Decode(Frame frame, const EnvelopeLimits& limits) {
    FrameMessage message(std::move(frame));
    auto reader = OpenFrameMessage(message.frame_, capnp::Schema::from<T>(), limits, message.aligned_copy_);
    if (!reader.ok()) return reader.status();
    message.reader_ = *std::move(reader);
    return message;
  }

  typename T::Reader root() const { return reader_->getRoot<T>(); }

 private:
  explicit FrameMessage(Frame frame) : frame_(std::move(frame)) {}
  Frame frame_;                            // keeps the bytes alive
  kj::Array<capnp::word> aligned_copy_;    // only when the frame was not 8-byte aligned
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
};

}  // namespace sy::transport
