// libFuzzer entry point for the SYTF parser (clang -fsanitize=fuzzer): anything Parse
// accepts must serialize back to the same bytes; refusals must be InvalidArgument.
#include <cstddef>
#include <cstdint>

#include "tests/reference/tensor_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = sy::reference::TensorFile::Parse(bytes);
  if (!parsed.ok()) {
    if (parsed.status().code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  if (parsed->Serialize() != bytes) __builtin_trap();
  return 0;
}
