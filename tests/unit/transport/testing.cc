// Implementation of the shared transport test helpers.
#include "tests/unit/transport/testing.h"

#include <cstring>

namespace sy::transport::testing {

Frame F32Frame(size_t count, float start) {
  std::vector<uint8_t> bytes(count * sizeof(float));
  for (size_t i = 0; i < count; ++i) {
    const float value = start + static_cast<float>(i);
    std::memcpy(bytes.data() + i * sizeof(float), &value, sizeof(float));
  }
  return Frame::FromVector(std::move(bytes));
}

void FillPing(Request& request, size_t count, float start) {
  auto envelope = request.header.initRoot<proto::Envelope>();
  envelope.setKind(proto::MessageKind::PING);
  if (count > 0) {
    SetTensor(envelope.initTensors(1)[0], "x", proto::TensorRole::ACTIVATIONS, proto::DType::F32, {count});
    request.data.push_back(F32Frame(count, start));
  }
}

Message RawPing(const Address& to, const std::string& sender, uint64_t request_id, size_t count, float start) {
  Request request;
  FillPing(request, count, start);
  auto envelope = request.header.getRoot<proto::Envelope>();
  envelope.setSender(sender.c_str());
  envelope.setRequestId(request_id);
  return Message{to, EncodeHeader(request.header), std::move(request.data)};
}

void EchoHandler(DecodedMessage request, Responder responder) {
  capnp::MallocMessageBuilder reply;
  auto envelope = reply.initRoot<proto::Envelope>();
  envelope.setKind(request.envelope().getKind());
  envelope.setTensors(request.envelope().getTensors());
  responder.Reply(reply, request.message().data);
}

}  // namespace sy::transport::testing
