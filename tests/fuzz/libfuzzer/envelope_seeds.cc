// Writes a seed corpus for fuzz_envelope_libfuzzer: valid messages of every kind
// (tests/fuzz/wire_corpus.h) in that fuzzer's input format, one file each.
// Usage: fuzz_envelope_seeds DIR
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/fuzz/wire_corpus.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  int written = 0;
  for (sy::proto::MessageKind kind : sy::fuzz::AllKinds()) {
    for (int reply = 0; reply < 2; ++reply) {
      for (uint64_t i = 0; i < 4; ++i) {
        sy::fuzz::FuzzRng rng(0x5EED0006, static_cast<uint64_t>(kind) * 8 + reply * 4 + i);
        const sy::transport::Message m = sy::fuzz::ValidMessage(kind, reply == 1, rng);
        std::string input(1, static_cast<char>(m.data.size()));
        bool fits = true;
        for (const auto& frame : m.data) {
          fits = fits && frame.size() < 256;
          input += static_cast<char>(frame.size());
        }
        if (!fits) continue;
        input += sy::fuzz::HeaderBytes(m);
        std::ofstream(std::string(argv[1]) + "/seed-" + std::to_string(written++), std::ios::binary) << input;
      }
    }
  }
  std::printf("%d seeds written to %s\n", written, argv[1]);
  return 0;
}
