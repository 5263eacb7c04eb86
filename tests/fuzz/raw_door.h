// RawDoor: sends fuzzed header bytes to a serving RpcNode through a bare transport
// (no RpcNode on this side, so nothing re-encodes or retries the bytes) and waits for
// the one reply. Which mutants get no reply by design is decided beforehand with the
// door's own decoder: a header that reads as a reply, and a request whose deadline has
// passed (the RPC layer drops both), are not sent. One call at a time; not thread-safe.
// FuzzDoor drives a door with such requests and checks what every door promises.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <capnp/message.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/transport.h"
#include "tests/fuzz/fuzz_rng.h"

namespace sy::fuzz {

// The outcome of one raw request.
struct RawReply {
  bool sent = false;        // false: the door would not answer it (see above); nothing was sent
  bool replied = false;     // a reply came back (else `status` says why not)
  absl::Status status;      // the reply's status: OK, or the error the envelope carries
};

class RawDoor {
 public:
  // `transport` must already be connected to `peer`.
  RawDoor(std::unique_ptr<transport::Transport> transport, std::string peer);
  ~RawDoor();

  // Sends `message` (its address is set here) and waits up to `timeout` for its reply.
  RawReply Call(transport::Message message, absl::Duration timeout = absl::Seconds(20));

 private:
  std::unique_ptr<transport::Transport> transport_;
  const std::string peer_;
};

// A request built valid: `header` (an Envelope root) and `data`; `summary` names what
// the generator broke on purpose. FuzzDoor gives it its request id (and a sender when
// it has none).
struct Seed {
  std::unique_ptr<capnp::MallocMessageBuilder> header = std::make_unique<capnp::MallocMessageBuilder>();
  std::vector<transport::Frame> data;
  std::string summary;
};

// What FuzzDoor saw.
struct DoorTally {
  int sent = 0, answered = 0, refused = 0, not_sent = 0;
};

struct DoorFuzz {
  uint64_t seed = 0;
  int iterations = 0;
  // A request for iteration (seed, i); half of them get their header bytes mutated too.
  std::function<Seed(FuzzRng&)> make;
  // Everything a refusal must leave as it was, as comparable text.
  std::function<std::string()> state;
  // Runs after an answered request, before the next state is taken (e.g. waits for the
  // work it started to settle); may be empty.
  std::function<void()> after_answer;
};

// Sends every request of `fuzz` through `door`: each must be answered (or be one the
// door drops by design), a refusal must be a clear error (a code other than Internal
// or Unknown, with a message) and leave `state` unchanged. Records gtest failures
// (naming seed, iteration, summary and the refusal) and stops at the first.
DoorTally FuzzDoor(RawDoor& door, const DoorFuzz& fuzz);

}  // namespace sy::fuzz
