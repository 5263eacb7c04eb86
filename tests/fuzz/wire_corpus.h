// Seeds for wire fuzzing: a valid message of every MessageKind in proto/ (request
// or reply, body filled field by field from the schema, 0..2 tensor frames that
// match their descriptors), and the receiver's side: reading an accepted message's
// body through DecodedMessage::Body<T>() for the struct its kind names, then every
// field of it. Pure functions: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/transport/envelope_codec.h"
#include "tests/fuzz/fuzz_rng.h"

namespace sy::fuzz {

// Every kind a sender may put in a header (MessageKind 1..REPLICA_GRADIENTS).
std::vector<proto::MessageKind> AllKinds();

// A valid message of `kind` from "trainer-0" (a request, or a reply when `is_reply`).
transport::Message ValidMessage(proto::MessageKind kind, bool is_reply, FuzzRng& rng);

// The header frame's bytes, and a frame holding `bytes` (at an odd address when
// `misaligned`, so the decoder's aligning copy is exercised too).
std::string HeaderBytes(const transport::Message& message);
transport::Frame FrameOf(const std::string& bytes, bool misaligned = false);

// A message from a libFuzzer input: byte 0 = number of data frames (mod 4), then one
// byte per frame = its size (zero bytes), then the header bytes (misaligned when their
// count is odd). Empty when the input is too short.
std::optional<transport::Message> MessageFromFuzzInput(const std::string& input);

// Reads the body of an accepted message as its kind's struct, then every field.
// The Body<T>() status when it refuses (InvalidArgument); Internal when a read
// after an accepted Body<T>() throws (Body promises later reads cannot fail).
// Returns the number of values read.
absl::StatusOr<uint64_t> ReadBody(const transport::DecodedMessage& message);

}  // namespace sy::fuzz
