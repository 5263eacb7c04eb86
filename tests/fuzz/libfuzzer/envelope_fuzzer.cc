// libFuzzer entry point for DecodedMessage::Decode and Body<T>() (clang -fsanitize=fuzzer).
// Input format: fuzz::MessageFromFuzzInput (tests/fuzz/wire_corpus.h). Traps when an
// accepted message breaks the decoder's promises.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/transport/envelope_codec.h"
#include "tests/fuzz/wire_corpus.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sy;
  auto message = fuzz::MessageFromFuzzInput(std::string(reinterpret_cast<const char*>(data), size));
  if (!message) return 0;
  auto decoded = transport::DecodedMessage::Decode(*std::move(message), {});
  if (!decoded.ok()) {
    if (decoded.status().code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  auto tensors = decoded->envelope().getTensors();
  if (tensors.size() != decoded->message().data.size()) __builtin_trap();
  for (unsigned i = 0; i < tensors.size(); ++i) {
    if (tensors[i].getByteLength() != decoded->data(i).size()) __builtin_trap();
  }
  auto body = fuzz::ReadBody(*decoded);
  if (!body.ok() && body.status().code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
  return 0;
}
