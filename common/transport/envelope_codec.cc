// Header encoding and the door checks of DecodedMessage::Decode.
#include "common/transport/envelope_codec.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sy::transport {
namespace {

// Highest MessageKind this build knows; a larger value comes from a newer peer or garbage.
constexpr uint16_t kMaxKind = static_cast<uint16_t>(proto::MessageKind::LIVE_STATE);

absl::Status CheckTensors(const proto::Envelope::Reader& envelope, const Message& message,
                          const EnvelopeLimits& limits) {
  auto tensors = envelope.getTensors();
  if (tensors.size() > limits.max_tensors) {
    return absl::InvalidArgumentError(absl::StrCat("too many tensors: ", tensors.size()));
  }
  if (tensors.size() != message.data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("frame count mismatch: ", tensors.size(),
                                                   " tensor descriptors, ", message.data.size(), " data frames"));
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto desc = tensors[i];
    const size_t element = DTypeSize(desc.getDtype());
    if (element == 0) return absl::InvalidArgumentError(absl::StrCat("tensor ", i, ": unknown dtype"));
    auto shape = desc.getShape();
    if (shape.size() > limits.max_rank) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", i, ": rank ", shape.size(), " too large"));
    }
    uint64_t bytes = element;
    for (uint64_t dim : shape) {
      if (dim != 0 && bytes > limits.max_message_bytes / dim) {
        return absl::InvalidArgumentError(absl::StrCat("tensor ", i, ": shape too large"));
      }
      bytes *= dim;
    }
    if (bytes != desc.getByteLength()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", i, ": shape and dtype give ", bytes,
                                                     " bytes, descriptor says ", desc.getByteLength()));
    }
    if (desc.getByteLength() != message.data[i].size()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", i, ": descriptor says ", desc.getByteLength(),
                                                     " bytes, frame has ", message.data[i].size()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

size_t DTypeSize(proto::DType dtype) {
  switch (dtype) {
    case proto::DType::F32:
      return 4;
    case proto::DType::BF16:
      return 2;
  }
  return 0;
}

void SetTensor(proto::TensorDesc::Builder desc, const std::string& name, proto::TensorRole role,
               proto::DType dtype, const std::vector<uint64_t>& shape) {
  desc.setName(name.c_str());
  desc.setRole(role);
  desc.setDtype(dtype);
  auto dims = desc.initShape(static_cast<unsigned>(shape.size()));
  uint64_t bytes = DTypeSize(dtype);
  for (size_t i = 0; i < shape.size(); ++i) {
    dims.set(static_cast<unsigned>(i), shape[i]);
    bytes *= shape[i];
  }
  desc.setByteLength(bytes);
}

Frame EncodeHeader(capnp::MessageBuilder& builder) {
  auto words = std::make_shared<kj::Array<capnp::word>>(capnp::messageToFlatArray(builder));
  const auto bytes = words->asBytes();
  return Frame::FromShared(words, bytes.begin(), bytes.size());
}

kj::ArrayPtr<const capnp::word> AlignedWords(const Frame& frame, kj::Array<capnp::word>& copy) {
  const size_t words = frame.size() / sizeof(capnp::word);
  if (reinterpret_cast<uintptr_t>(frame.data()) % alignof(capnp::word) == 0) {
    return kj::arrayPtr(reinterpret_cast<const capnp::word*>(frame.data()), words);
  }
  copy = kj::heapArray<capnp::word>(words);
  std::memcpy(copy.begin(), frame.data(), words * sizeof(capnp::word));
  return copy.asPtr();
}

std::optional<HeaderIds> PeekHeaderIds(const Frame& header, const EnvelopeLimits& limits) {
  if (header.size() == 0 || header.size() % sizeof(capnp::word) != 0) return std::nullopt;
  kj::Array<capnp::word> copy;
  const kj::ArrayPtr<const capnp::word> words = AlignedWords(header, copy);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 64;  // the root struct's own words; nothing it points to is read
  options.nestingLimit = limits.nesting_limit;
  std::optional<HeaderIds> ids;
  kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(words, options);
    auto envelope = reader.getRoot<proto::Envelope>();
    ids = HeaderIds{envelope.getRequestId(), envelope.getIsReply()};
  });
  return ids;
}

uint64_t PeekRequestId(const Frame& header, const EnvelopeLimits& limits) {
  const std::optional<HeaderIds> ids = PeekHeaderIds(header, limits);
  return ids && !ids->is_reply ? ids->request_id : 0;
}

absl::StatusOr<DecodedMessage> DecodedMessage::Decode(Message message, const EnvelopeLimits& limits) {
  const Frame& header = message.header;
  if (header.size() == 0) return absl::InvalidArgumentError("empty header frame");
  if (header.size() > limits.max_header_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("header of ", header.size(), " bytes exceeds ",
                                                   limits.max_header_bytes));
  }
  if (message.ByteSize() > limits.max_message_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("message of ", message.ByteSize(), " bytes exceeds ",
                                                   limits.max_message_bytes));
  }
  if (header.size() % sizeof(capnp::word) != 0) {
    return absl::InvalidArgumentError("header size is not a whole number of 8-byte words");
  }
  DecodedMessage decoded;
  const kj::ArrayPtr<const capnp::word> view = AlignedWords(header, decoded.aligned_copy_);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = view.size() * limits.reads_per_header_word + 64;
  options.nestingLimit = limits.nesting_limit;

  absl::Status status;
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    {  // the door's walks use their own reader (traversal budget), leaving the caller's whole
      capnp::FlatArrayMessageReader check(view, options);
      check.getRoot<proto::Envelope>().totalSize();  // structure errors surface here
      // Texts and list types too (the body is checked by Body<T>()).
      ReadEveryField(check.getRoot<capnp::AnyPointer>(), capnp::Schema::from<proto::Envelope>());
    }
    decoded.words_ = view;
    decoded.options_ = options;
    decoded.reader_ = std::make_unique<capnp::FlatArrayMessageReader>(view, options);
    auto envelope = decoded.reader_->getRoot<proto::Envelope>();
    const auto kind = static_cast<uint16_t>(envelope.getKind());
    // Kind 0 only on an error reply to a request whose header could not be read.
    const bool error_reply = envelope.getIsReply() && envelope.getStatus().getCode() != proto::ErrorCode::OK;
    if (kind > kMaxKind || (kind == 0 && !error_reply)) {
      status = absl::InvalidArgumentError(absl::StrCat("unknown message kind ", kind));
      return;
    }
    const auto sender = envelope.getSender();
    if (sender.size() == 0 || sender.size() > limits.max_sender_bytes) {
      status = absl::InvalidArgumentError("sender id missing or too long");
      return;
    }
    if (!envelope.getIsReply() && envelope.getRequestId() == 0) {
      status = absl::InvalidArgumentError("request without a request id");
      return;
    }
    status = CheckTensors(envelope, message, limits);
    decoded.envelope_ = envelope;
    const int64_t ttl_ms = envelope.getTtlMs();
    if (ttl_ms < 0) {
      status = absl::InvalidArgumentError(absl::StrCat("negative time to live ", ttl_ms, " ms"));
      return;
    }
    if (ttl_ms > 0) decoded.deadline_ = absl::Now() + std::min(absl::Milliseconds(ttl_ms), limits.max_ttl);
  });
  KJ_IF_MAYBE(e, error) {
    return absl::InvalidArgumentError(absl::StrCat("malformed header: ", e->getDescription().cStr()));
  }
  if (!status.ok()) return status;
  decoded.message_ = std::move(message);
  return decoded;
}

}  // namespace sy::transport
