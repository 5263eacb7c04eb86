// libFuzzer entry point for DecodedMessage::Decode and Body<T>() (clang -fsanitize=fuzzer).
// Input: byte 0 = number of data frames (mod 4), then one byte per frame = its size,
// then the header bytes. Traps when an accepted message breaks the decoder's promises.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/transport/envelope_codec.h"
#include "tests/fuzz/wire_corpus.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sy;
  if (size < 1) return 0;
  const size_t frames = data[0] % 4;
  if (size < 1 + frames) return 0;
  std::vector<transport::Frame> data_frames;
  for (size_t i = 0; i < frames; ++i) data_frames.push_back(fuzz::FrameOf(std::string(data[1 + i], '\0')));
  const std::string header(reinterpret_cast<const char*>(data) + 1 + frames, size - 1 - frames);
  transport::Message message({"fuzz"}, fuzz::FrameOf(header, header.size() % 2 == 1), std::move(data_frames));
  auto decoded = transport::DecodedMessage::Decode(std::move(message), {});
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
