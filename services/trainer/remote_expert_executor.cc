// Buckets to the expert hosts and back (see remote_expert_executor.h).
#include "services/trainer/remote_expert_executor.h"

#include "absl/strings/str_cat.h"
#include "common/transport/envelope_codec.h"
#include "proto/expert.capnp.h"
#include "services/trainer/rpc_batch.h"
#include "services/trainer/step_wire.h"
#include "services/trainer/wire_tensor.h"

namespace sy::trainer {
namespace {

std::string Where(const gpu::ExpertCall& call, int expert, int host, const char* what) {
  return absl::StrCat(what, " of step ", call.step, " micro-batch ", call.micro_batch, " layer ", call.layer,
                      " expert ", expert, " on host ", host);
}

template <class Builder>
void SetBucket(Builder bucket, const gpu::ExpertCall& call, int expert) {
  bucket.setStep(static_cast<uint64_t>(call.step));
  bucket.setMicroBatch(static_cast<uint32_t>(call.micro_batch));
  bucket.setLayer(static_cast<uint32_t>(call.layer));
  bucket.setExpert(static_cast<uint32_t>(expert));
}

}  // namespace

RemoteExpertExecutor::RemoteExpertExecutor(const gpu::ModelConfig& config, gpu::Backend* backend,
                                           transport::RpcNode* rpc, const Placement* placement,
                                           const HostPeers* peers, proto::DType wire, absl::Duration timeout)
    : config_(config),
      backend_(backend),
      rpc_(rpc),
      placement_(placement),
      peers_(peers),
      wire_(wire),
      timeout_(timeout) {}

RemoteExpertExecutor::RemoteExpertExecutor(const gpu::ModelConfig& config, gpu::Backend* backend,
                                           transport::RpcNode* rpc, const Placement* placement,
                                           const std::vector<std::string>& hosts, proto::DType wire,
                                           absl::Duration timeout)
    : RemoteExpertExecutor(config, backend, rpc, placement, nullptr, wire, timeout) {
  owned_peers_ = HostPeers::Fixed(hosts);
  peers_ = owned_peers_.get();
}

uint64_t RemoteExpertExecutor::TakeBytesSent() {
  const uint64_t b = bytes_sent_;
  bytes_sent_ = 0;
  return b;
}

absl::Status RemoteExpertExecutor::Forward(const gpu::ExpertCall& call, absl::Span<const gpu::ExpertBucket> buckets) {
  const int C = config_.d_model;
  std::vector<OutgoingCall> calls;
  std::vector<const gpu::ExpertBucket*> sent;
  for (const gpu::ExpertBucket& b : buckets) {
    if (b.rows == 0) continue;
    const int host = placement_->HostOfExpertMicroBatch(call.layer, b.expert, call.micro_batch);
    const int64_t n = int64_t{b.rows} * C;
    host_.resize(static_cast<size_t>(n));
    if (absl::Status s = backend_->CopyDeviceToHost(host_.data(), b.in, n * sizeof(float)); !s.ok()) return s;
    OutgoingCall& c = calls.emplace_back();
    c.to = {peers_->Peer(host), transport::Route::kConnected};
    c.route = [this, layer = call.layer, expert = b.expert, micro_batch = call.micro_batch] {
      return transport::Address{peers_->Peer(placement_->HostOfExpertMicroBatch(layer, expert, micro_batch)),
                                transport::Route::kConnected};
    };
    c.what = Where(call, b.expert, host, "forward");
    auto env = InitEnvelope(*c.header, proto::MessageKind::EXPERT_FORWARD);
    env.setPlacementEpoch(placement_->epoch());
    auto body = env.initBody().initAs<proto::expert::ExpertForwardRequest>();
    SetBucket(body.initBucket(), call, b.expert);
    body.setTokenCount(static_cast<uint32_t>(b.rows));
    body.setDModel(static_cast<uint32_t>(C));
    body.setVersion(call.training ? static_cast<uint64_t>(call.step - 1) : eval_version_);
    body.setTraining(call.training);
    body.setDropoutSeed(call.seed);
    transport::SetTensor(env.initTensors(1)[0], "activations", proto::TensorRole::ACTIVATIONS, wire_,
                         {static_cast<uint64_t>(b.rows), static_cast<uint64_t>(C)});
    c.data.push_back(EncodeFloats(host_.data(), n, wire_));
    bytes_sent_ += CallBytes(c);
    sent.push_back(&b);
  }
  auto replies = CallAll(*rpc_, calls, absl::Now() + timeout_, guard_);
  for (size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].ok()) return replies[i].status();
    const transport::DecodedMessage& r = *replies[i];
    const int64_t n = int64_t{sent[i]->rows} * C;
    auto tensors = r.envelope().getTensors();
    if (tensors.size() != 1) return absl::InternalError(absl::StrCat(calls[i].what, ": reply without outputs"));
    host_.resize(static_cast<size_t>(n));
    if (absl::Status s = DecodeFloats(r.data(0), tensors[0].getDtype(), n, host_.data()); !s.ok()) {
      return absl::InternalError(absl::StrCat(calls[i].what, ": ", s.message()));
    }
    if (absl::Status s = backend_->CopyHostToDevice(sent[i]->out, host_.data(), n * sizeof(float)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status RemoteExpertExecutor::Backward(const gpu::ExpertCall& call,
                                            absl::Span<const gpu::ExpertBucketGrad> buckets) {
  const int C = config_.d_model;
  std::vector<OutgoingCall> calls;
  std::vector<const gpu::ExpertBucketGrad*> sent;
  for (const gpu::ExpertBucketGrad& b : buckets) {
    if (b.rows == 0) continue;
    const int host = placement_->HostOfExpertMicroBatch(call.layer, b.expert, call.micro_batch);
    const int64_t n = int64_t{b.rows} * C;
    host_.resize(static_cast<size_t>(n));
    if (absl::Status s = backend_->CopyDeviceToHost(host_.data(), b.dout, n * sizeof(float)); !s.ok()) return s;
    OutgoingCall& c = calls.emplace_back();
    c.to = {peers_->Peer(host), transport::Route::kConnected};
    c.route = [this, layer = call.layer, expert = b.expert, micro_batch = call.micro_batch] {
      return transport::Address{peers_->Peer(placement_->HostOfExpertMicroBatch(layer, expert, micro_batch)),
                                transport::Route::kConnected};
    };
    c.what = Where(call, b.expert, host, "backward");
    auto env = InitEnvelope(*c.header, proto::MessageKind::EXPERT_BACKWARD);
    env.setPlacementEpoch(placement_->epoch());
    auto body = env.initBody().initAs<proto::expert::ExpertBackwardRequest>();
    SetBucket(body.initBucket(), call, b.expert);
    body.setTokenCount(static_cast<uint32_t>(b.rows));
    body.setDModel(static_cast<uint32_t>(C));
    body.setVersion(static_cast<uint64_t>(call.step - 1));
    transport::SetTensor(env.initTensors(1)[0], "outputGrad", proto::TensorRole::OUTPUT_GRAD, wire_,
                         {static_cast<uint64_t>(b.rows), static_cast<uint64_t>(C)});
    c.data.push_back(EncodeFloats(host_.data(), n, wire_));
    bytes_sent_ += CallBytes(c);
    sent.push_back(&b);
  }
  auto replies = CallAll(*rpc_, calls, absl::Now() + timeout_, guard_);
  for (size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].ok()) return replies[i].status();
    const transport::DecodedMessage& r = *replies[i];
    const int64_t n = int64_t{sent[i]->rows} * C;
    auto tensors = r.envelope().getTensors();
    if (tensors.size() != 1) return absl::InternalError(absl::StrCat(calls[i].what, ": reply without inputGrad"));
    host_.resize(static_cast<size_t>(n));
    if (absl::Status s = DecodeFloats(r.data(0), tensors[0].getDtype(), n, host_.data()); !s.ok()) {
      return absl::InternalError(absl::StrCat(calls[i].what, ": ", s.message()));
    }
    if (absl::Status s = backend_->CopyHostToDevice(sent[i]->din, host_.data(), n * sizeof(float)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace sy::trainer
