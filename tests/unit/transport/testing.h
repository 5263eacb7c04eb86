// Helpers shared by the transport tests, the echo server and the bench: building
// requests with tensor frames, and an echo handler that answers with the same frames.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/transport/envelope_codec.h"
#include "common/transport/rpc.h"

namespace sy::transport::testing {

// A float32 tensor of `count` elements with values start, start+1, ... as a frame.
Frame F32Frame(size_t count, float start);

// A ping request carrying one f32 tensor frame of `count` elements (none when count is 0).
struct Request {
  capnp::MallocMessageBuilder header;
  std::vector<Frame> data;
};
void FillPing(Request& request, size_t count, float start);

// Raw (not RPC-stamped) request message, for tests that speak to an RpcNode directly.
Message RawPing(const Address& to, const std::string& sender, uint64_t request_id, size_t count, float start);

// Handler answering every request with its own tensors (frames shared, not copied).
void EchoHandler(DecodedMessage request, Responder responder);

}  // namespace sy::transport::testing
