// The one builder of the expert host's replies that carry a body and no tensor
// frames (step protocol, state stream, placement): an envelope of the request's kind
// whose body the caller fills, sent through the request's Responder. Header-only.
#pragma once

#include <utility>

#include <capnp/message.h>

#include "common/transport/rpc.h"
#include "proto/envelope.capnp.h"
#include "services/cluster/envelope.h"

namespace sy::expert_host {

// Answers `responder` with a reply of `kind` whose `Body` `fill(Body::Builder)` fills.
template <class Body, class Fill>
void ReplyWith(transport::Responder& responder, proto::MessageKind kind, Fill&& fill) {
  capnp::MallocMessageBuilder message;
  std::forward<Fill>(fill)(cluster::InitBody<Body>(message, kind));
  responder.Reply(message);
}

}  // namespace sy::expert_host
