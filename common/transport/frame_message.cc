// The door checks of a Cap'n Proto message carried in a data frame (see frame_message.h).
#include "common/transport/frame_message.h"

#include <capnp/any.h>
#include <kj/exception.h>

#include "absl/strings/str_cat.h"

namespace sy::transport {

absl::StatusOr<std::unique_ptr<capnp::FlatArrayMessageReader>> OpenFrameMessage(const Frame& frame,
                                                                                 capnp::StructSchema schema,
                                                                                 const EnvelopeLimits& limits,
                                                                                 kj::Array<capnp::word>& aligned_copy) {
  if (frame.size() == 0 || frame.size() % sizeof(capnp::word) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("message frame of ", frame.size(), " bytes is not a whole number of 8-byte words"));
  }
  if (frame.size() > limits.max_message_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("message frame of ", frame.size(), " bytes exceeds ", limits.max_message_bytes));
  }
  const kj::ArrayPtr<const capnp::word> words = AlignedWords(frame, aligned_copy);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words.size() * limits.reads_per_header_word + 64;
  options.nestingLimit = limits.nesting_limit;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader;
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    {  // the checks use their own reader (traversal budget), leaving the caller's whole
      capnp::FlatArrayMessageReader check(words, options);
      auto root = check.getRoot<capnp::AnyPointer>();
      root.targetSize();               // bounds every pointer
      ReadEveryField(root, schema);    // texts and list types
    }
    reader = std::make_unique<capnp::FlatArrayMessageReader>(words, options);
  });
  KJ_IF_MAYBE(e, error) {
    return absl::InvalidArgumentError(absl::StrCat("message frame: ", e->getDescription().cStr()));
  }
  return reader;
}

}  // namespace sy::transport
