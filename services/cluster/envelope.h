// The one envelope builder every service uses (an envelope of a kind, stamped with the
// placement epoch, optionally with its body initialised) and a tensor frame of opaque
// state bytes. Header-only; pure.
#pragma once

#include <string>
#include <vector>

#include <capnp/message.h>

#include "absl/strings/string_view.h"
#include "common/transport/envelope_codec.h"
#include "proto/envelope.capnp.h"

namespace sy::cluster {

// Initialises `builder` as an envelope of `kind` stamped with placement `epoch` (0: none) and
// returns it (request routing fields are stamped by RpcNode).
inline proto::Envelope::Builder InitEnvelope(capnp::MessageBuilder& builder, proto::MessageKind kind,
                                             uint64_t epoch = 0) {
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setKind(kind);
  envelope.setPlacementEpoch(epoch);
  return envelope;
}

// The same envelope, returning its body initialised as `Body`.
template <class Body>
typename Body::Builder InitBody(capnp::MallocMessageBuilder& builder, proto::MessageKind kind, uint64_t epoch = 0) {
  return InitEnvelope(builder, kind, epoch).getBody().initAs<Body>();
}

// Attaches `bytes` as the single "state" frame (f32 by convention: its size must be a
// multiple of 4; the caller checks).
inline std::vector<transport::Frame> AttachState(capnp::MallocMessageBuilder& builder, absl::string_view bytes) {
  auto envelope = builder.getRoot<proto::Envelope>();
  transport::SetTensor(envelope.initTensors(1)[0], "state", proto::TensorRole::STATE, proto::DType::F32,
                       {static_cast<uint64_t>(bytes.size() / 4)});
  return {transport::Frame::CopyOf(bytes.data(), bytes.size())};
}

}  // namespace sy::cluster
