// Schema-driven helpers over Cap'n Proto's dynamic API, so the fuzz tests cover
// every field of every wire struct without listing fields by hand (a field added
// to proto/ is fuzzed automatically):
// - FillRandom sets every field of a struct builder (one member of each union,
//   short lists and texts, nested structs to a bounded depth) from a FuzzRng;
// - ReadEveryField reads every field of a struct reader (the active union member
//   only, as a receiver would) and returns how many values it visited plus the non-zero bytes of its texts
//   and data (every byte is read).
// Pure functions: thread-safe on distinct messages.
#pragma once

#include <cstdint>

#include <capnp/dynamic.h>

#include "tests/fuzz/fuzz_rng.h"

namespace sy::fuzz {

void FillRandom(capnp::DynamicStruct::Builder builder, FuzzRng& rng, int depth = 4);

// May throw kj::Exception if the reader's message is malformed (callers catch it).
uint64_t ReadEveryField(capnp::DynamicStruct::Reader reader);

}  // namespace sy::fuzz
