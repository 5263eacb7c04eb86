// Encoding and door-checking of envelope headers (proto/envelope.capnp).
//
// EncodeHeader turns a Cap'n Proto builder into a header Frame. DecodedMessage::Decode
// checks a received Message before anything uses it: header size and 8-byte
// alignment (an unaligned frame is copied), Cap'n Proto structure under
// ReaderOptions limits sized to the header (a hostile header cannot make the
// reader walk far), known message kind, ids, and that every TensorDesc matches its
// data frame (count, dtype, shape product, byte length). Any failure is
// InvalidArgument with a message saying what was wrong; nothing is thrown.
//
// Thread-compatible: a DecodedMessage is a value owned by one thread at a time.
//
//   capnp::MallocMessageBuilder b;
//   auto env = b.initRoot<proto::Envelope>();
//   SetTensor(env.initTensors(1)[0], "bucket", proto::TensorRole::ACTIVATIONS, proto::DType::F32, {64, 512});
//   Message m{{"host-1"}, EncodeHeader(b), {activations_frame}};
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/array.h>
#include <kj/exception.h>

#include "absl/status/statusor.h"
#include "common/transport/door_walk.h"
#include "common/transport/message.h"
#include "proto/envelope.capnp.h"

namespace sy::transport {

struct EnvelopeLimits {
  size_t max_header_bytes = 64u << 10;      // a header is metadata only
  size_t max_message_bytes = 256u << 20;    // header plus all data frames
  size_t max_tensors = 64;
  size_t max_rank = 8;
  size_t max_sender_bytes = 256;
  uint64_t reads_per_header_word = 8;       // traversal budget: the body may be read a few times
  int nesting_limit = 16;
  absl::Duration max_ttl = absl::Minutes(10);  // a longer Envelope.ttlMs counts as this
};

// Bytes per element: 4 for f32, 2 for bf16, 0 for a value no schema version defines.
size_t DTypeSize(proto::DType dtype);

// Fills a tensor descriptor; byteLength is computed from dtype and shape.
void SetTensor(proto::TensorDesc::Builder desc, const std::string& name, proto::TensorRole role,
               proto::DType dtype, const std::vector<uint64_t>& shape);

// What a header says of itself before the door checks: its request id and direction.
struct HeaderIds {
  uint64_t request_id = 0;
  bool is_reply = false;
};
// Reads only the header's root struct, so a header Decode refused, even one past
// max_header_bytes, still says which call it belongs to and the refusal can end that
// call at once instead of leaving it to time out; nullopt when the root struct is
// unreadable.
std::optional<HeaderIds> PeekHeaderIds(const Frame& header, const EnvelopeLimits& limits);

// The request id in a header that Decode refused, when the header still reads as a
// request (see PeekHeaderIds); 0 when it is unreadable, a reply, or carries no id.
uint64_t PeekRequestId(const Frame& header, const EnvelopeLimits& limits);

// `frame`'s bytes as 8-byte aligned words: in place when aligned, else copied into `copy`.
kj::ArrayPtr<const capnp::word> AlignedWords(const Frame& frame, kj::Array<capnp::word>& copy);

// Serializes the builder's message into one header frame (8-byte aligned words).
Frame EncodeHeader(capnp::MessageBuilder& builder);

class DecodedMessage {
 public:
  // Validates `message` (see the file comment). InvalidArgument on any defect.
  static absl::StatusOr<DecodedMessage> Decode(Message message, const EnvelopeLimits& limits);

  proto::Envelope::Reader envelope() const { return envelope_; }
  const Message& message() const { return message_; }
  const Frame& data(size_t i) const { return message_.data[i]; }
  // When the sender stops waiting, on this machine's clock: decode time plus the
  // envelope's time to live (capped at EnvelopeLimits.max_ttl); InfiniteFuture for none.
  absl::Time deadline() const { return deadline_; }

  // The body read as struct T; InvalidArgument if it is not one (never throws). The
  // check reads every field once through a separate reader with its own traversal
  // budget, so the caller's budget is whole: one complete read cannot fail.
  template <typename T>
  absl::StatusOr<typename T::Reader> Body() const {
    absl::StatusOr<typename T::Reader> result = absl::InvalidArgumentError("body unreadable");
    kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
      capnp::FlatArrayMessageReader check(words_, options_);
      auto checked = check.getRoot<proto::Envelope>().getBody();
      if (checked.isNull()) return;
      checked.template getAs<T>().totalSize();             // bounds every pointer
      ReadEveryField(checked, capnp::Schema::from<T>());  // texts and list types
      result = envelope_.getBody().template getAs<T>();
    });
    KJ_IF_MAYBE(e, error) {
      return absl::InvalidArgumentError(std::string("body: ") + e->getDescription().cStr());
    }
    return result;
  }

 private:
  DecodedMessage() = default;
  Message message_;
  kj::Array<capnp::word> aligned_copy_;  // only when the header frame was not 8-byte aligned
  kj::ArrayPtr<const capnp::word> words_;  // the header's words (in message_ or aligned_copy_)
  capnp::ReaderOptions options_;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
  proto::Envelope::Reader envelope_;
  absl::Time deadline_ = absl::InfiniteFuture();
};

}  // namespace sy::transport
