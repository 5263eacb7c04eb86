// The kind -> body struct table of proto/envelope.capnp, used both to build valid
// seed messages and to read accepted bodies as a receiver would.
#include "tests/fuzz/wire_corpus.h"

#include <cstring>
#include <memory>

#include <capnp/dynamic.h>
#include <capnp/message.h>

#include "proto/admin.capnp.h"
#include "proto/checkpoint.capnp.h"
#include "proto/coordinator.capnp.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"
#include "tests/fuzz/capnp_walk.h"

namespace sy::fuzz {
namespace {

template <typename T>
absl::StatusOr<uint64_t> ReadTyped(const transport::DecodedMessage& message) {
  absl::StatusOr<typename T::Reader> body = message.template Body<T>();
  if (!body.ok()) return body.status();
  uint64_t visited = 0;
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] { visited = ReadEveryField(capnp::toDynamic(*body)); });
  KJ_IF_MAYBE(e, error) {
    return absl::InternalError(std::string("reading an accepted body threw: ") + e->getDescription().cStr());
  }
  return visited;
}

template <typename Request, typename Reply>
absl::StatusOr<uint64_t> ReadPair(const transport::DecodedMessage& message) {
  return message.envelope().getIsReply() ? ReadTyped<Reply>(message) : ReadTyped<Request>(message);
}

// The body schema of (kind, is_reply); false for kinds without a body (ping).
bool BodySchema(proto::MessageKind kind, bool is_reply, capnp::StructSchema* schema) {
  namespace ex = proto::expert;
  namespace pa = proto::parameter;
  namespace co = proto::coordinator;
  namespace ck = proto::checkpoint;
  namespace ad = proto::admin;
#define SY_PAIR(K, REQ, REP)                                                                   \
  case proto::MessageKind::K:                                                                  \
    *schema = is_reply ? capnp::Schema::from<REP>() : capnp::Schema::from<REQ>(); \
    return true;
  switch (kind) {
    SY_PAIR(EXPERT_FORWARD, ex::ExpertForwardRequest, ex::ExpertForwardReply)
    SY_PAIR(EXPERT_BACKWARD, ex::ExpertBackwardRequest, ex::ExpertBackwardReply)
    SY_PAIR(STEP_COMMIT, ex::StepRequest, ex::StepReply)
    SY_PAIR(STATE_STREAM, ex::StateStreamRequest, ex::StateStreamReply)
    SY_PAIR(PARAM_PUSH, pa::PushRequest, pa::PushReply)
    SY_PAIR(PARAM_PULL, pa::PullRequest, pa::PullReply)
    SY_PAIR(REGISTER, co::RegisterRequest, co::RegisterReply)
    SY_PAIR(HEARTBEAT, co::HeartbeatRequest, co::HeartbeatReply)
    SY_PAIR(PLACEMENT, co::PlacementRequest, co::PlacementReply)
    SY_PAIR(LOAD_REPORT, co::LoadReportRequest, co::LoadReportReply)
    SY_PAIR(CHECKPOINT_CHUNK, ck::ChunkRequest, ck::ChunkReply)
    SY_PAIR(CHECKPOINT_MANIFEST, ck::ManifestRequest, ck::ManifestReply)
    SY_PAIR(ADMIN, ad::AdminRequest, ad::AdminReply)
    SY_PAIR(TRAINER_CONTROL, co::TrainerControlRequest, co::TrainerControlReply)
    SY_PAIR(REPLICA_GRADIENTS, ex::ReplicaGradientsRequest, ex::ReplicaGradientsReply)
    SY_PAIR(LIVE_STATE, ex::LiveStateRequest, ex::LiveStateReply)
    case proto::MessageKind::INVALID:
    case proto::MessageKind::PING:
      return false;
  }
#undef SY_PAIR
  return false;
}

}  // namespace

std::vector<proto::MessageKind> AllKinds() {
  std::vector<proto::MessageKind> kinds;
  for (uint16_t k = 1; k <= static_cast<uint16_t>(proto::MessageKind::LIVE_STATE); ++k) {
    kinds.push_back(static_cast<proto::MessageKind>(k));
  }
  return kinds;
}

transport::Message ValidMessage(proto::MessageKind kind, bool is_reply, FuzzRng& rng) {
  capnp::MallocMessageBuilder builder;
  auto env = builder.initRoot<proto::Envelope>();
  env.setSender("trainer-0");
  env.setRequestId(1 + rng.Below(1000));
  env.setTtlMs(static_cast<int64_t>(rng.Below(2)) * 1000);
  env.setPlacementEpoch(rng.Below(4));
  env.setKind(kind);
  env.setIsReply(is_reply);
  env.setAttempt(static_cast<uint32_t>(rng.Below(3)));
  if (is_reply && rng.OneIn(4)) {  // an error reply: a status and no body
    env.initStatus().setCode(static_cast<proto::ErrorCode>(1 + rng.Below(16)));
    env.getStatus().setMessage("refused");
  } else {
    capnp::StructSchema schema;
    if (BodySchema(kind, is_reply, &schema)) FillRandom(env.initBody().initAs<capnp::DynamicStruct>(schema), rng);
  }
  std::vector<transport::Frame> frames;
  auto tensors = env.initTensors(static_cast<unsigned>(rng.Below(3)));
  for (unsigned i = 0; i < tensors.size(); ++i) {
    std::vector<uint64_t> shape(1 + rng.Below(3));
    for (uint64_t& d : shape) d = 1 + rng.Below(6);
    const proto::DType dtype = rng.OneIn(2) ? proto::DType::F32 : proto::DType::BF16;
    transport::SetTensor(tensors[i], "t", proto::TensorRole::ACTIVATIONS, dtype, shape);
    std::string bytes(tensors[i].getByteLength(), '\0');
    for (char& c : bytes) c = static_cast<char>(rng.Bits());
    frames.push_back(FrameOf(bytes));
  }
  return transport::Message({"host-0"}, transport::EncodeHeader(builder), std::move(frames));
}

std::string HeaderBytes(const transport::Message& message) {
  return std::string(reinterpret_cast<const char*>(message.header.data()), message.header.size());
}

transport::Frame FrameOf(const std::string& bytes, bool misaligned) {
  if (!misaligned) return transport::Frame::CopyOf(bytes.data(), bytes.size());
  auto storage = std::make_shared<std::vector<uint64_t>>(bytes.size() / 8 + 2);
  char* at = reinterpret_cast<char*>(storage->data()) + 1;
  std::memcpy(at, bytes.data(), bytes.size());
  return transport::Frame::FromShared(storage, at, bytes.size());
}

std::optional<transport::Message> MessageFromFuzzInput(const std::string& input) {
  if (input.empty()) return std::nullopt;
  const size_t frames = static_cast<unsigned char>(input[0]) % 4;
  if (input.size() < 1 + frames) return std::nullopt;
  std::vector<transport::Frame> data;
  for (size_t i = 0; i < frames; ++i) data.push_back(FrameOf(std::string(static_cast<unsigned char>(input[1 + i]), '\0')));
  const std::string header = input.substr(1 + frames);
  return transport::Message({"fuzz"}, FrameOf(header, header.size() % 2 == 1), std::move(data));
}

absl::StatusOr<uint64_t> ReadBody(const transport::DecodedMessage& message) {
  namespace ex = proto::expert;
  namespace pa = proto::parameter;
  namespace co = proto::coordinator;
  namespace ck = proto::checkpoint;
  namespace ad = proto::admin;
  switch (message.envelope().getKind()) {
    case proto::MessageKind::EXPERT_FORWARD: return ReadPair<ex::ExpertForwardRequest, ex::ExpertForwardReply>(message);
    case proto::MessageKind::EXPERT_BACKWARD:
      return ReadPair<ex::ExpertBackwardRequest, ex::ExpertBackwardReply>(message);
    case proto::MessageKind::STEP_COMMIT: return ReadPair<ex::StepRequest, ex::StepReply>(message);
    case proto::MessageKind::STATE_STREAM: return ReadPair<ex::StateStreamRequest, ex::StateStreamReply>(message);
    case proto::MessageKind::PARAM_PUSH: return ReadPair<pa::PushRequest, pa::PushReply>(message);
    case proto::MessageKind::PARAM_PULL: return ReadPair<pa::PullRequest, pa::PullReply>(message);
    case proto::MessageKind::REGISTER: return ReadPair<co::RegisterRequest, co::RegisterReply>(message);
    case proto::MessageKind::HEARTBEAT: return ReadPair<co::HeartbeatRequest, co::HeartbeatReply>(message);
    case proto::MessageKind::PLACEMENT: return ReadPair<co::PlacementRequest, co::PlacementReply>(message);
    case proto::MessageKind::LOAD_REPORT: return ReadPair<co::LoadReportRequest, co::LoadReportReply>(message);
    case proto::MessageKind::CHECKPOINT_CHUNK: return ReadPair<ck::ChunkRequest, ck::ChunkReply>(message);
    case proto::MessageKind::CHECKPOINT_MANIFEST: return ReadPair<ck::ManifestRequest, ck::ManifestReply>(message);
    case proto::MessageKind::ADMIN: return ReadPair<ad::AdminRequest, ad::AdminReply>(message);
    case proto::MessageKind::TRAINER_CONTROL:
      return ReadPair<co::TrainerControlRequest, co::TrainerControlReply>(message);
    case proto::MessageKind::REPLICA_GRADIENTS:
      return ReadPair<ex::ReplicaGradientsRequest, ex::ReplicaGradientsReply>(message);
    case proto::MessageKind::LIVE_STATE: return ReadPair<ex::LiveStateRequest, ex::LiveStateReply>(message);
    case proto::MessageKind::INVALID:
    case proto::MessageKind::PING:
      return 0;
  }
  return absl::InvalidArgumentError("unknown message kind");
}

}  // namespace sy::fuzz
