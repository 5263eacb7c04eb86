// Byte-level mutations for fuzzing, every choice drawn from a FuzzRng so a run is
// reproducible from (seed, iteration). Besides generic edits (bit flips,
// truncation, insertion, deletion, duplication) it knows the Cap'n Proto flat
// array layout: it swaps 8-byte words, writes pointers with huge list counts,
// far/other pointers and random pointer garbage, and rewrites the segment table.
// Pure functions of their inputs: thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "tests/fuzz/fuzz_rng.h"

namespace sy::fuzz {

// Applies 1 to `max_edits` random edits to `bytes` (which may become empty).
std::string Mutate(std::string bytes, FuzzRng& rng, int max_edits = 4);

// Offset and hex bytes, 16 per line, at most `max_bytes` of them (then a note of the rest).
std::string HexDump(absl::string_view bytes, size_t max_bytes = 1024);

}  // namespace sy::fuzz
