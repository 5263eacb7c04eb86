// Small helpers for building coordinator messages: an envelope of a kind with a body
// struct, and a tensor frame of opaque state bytes. Header-only; pure.
#pragma once

#include <string>
#include <vector>

#include <capnp/message.h>

#include "absl/strings/string_view.h"
#include "common/transport/envelope_codec.h"
#include "proto/envelope.capnp.h"

namespace sy::coordinator {

// Initialises `builder` as an envelope of `kind` and returns its body as `Body`.
template <class Body>
typename Body::Builder InitBody(capnp::MallocMessageBuilder& builder, proto::MessageKind kind, uint64_t epoch = 0) {
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setKind(kind);
  envelope.setPlacementEpoch(epoch);
  return envelope.getBody().initAs<Body>();
}

// Attaches `bytes` as the single "state" frame (f32 by convention: its size must be a
// multiple of 4; the caller checks).
inline std::vector<transport::Frame> AttachState(capnp::MallocMessageBuilder& builder, absl::string_view bytes) {
  auto envelope = builder.getRoot<proto::Envelope>();
  transport::SetTensor(envelope.initTensors(1)[0], "state", proto::TensorRole::STATE, proto::DType::F32,
                       {static_cast<uint64_t>(bytes.size() / 4)});
  return {transport::Frame::CopyOf(bytes.data(), bytes.size())};
}

}  // namespace sy::coordinator
