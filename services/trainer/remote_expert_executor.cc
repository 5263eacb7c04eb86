// Buckets to the expert hosts and back (see remote_expert_executor.h).
#include "services/trainer/remote_expert_executor.h"

#include "absl/strings/str_cat.h"
#include "common/transport/envelope_codec.h"
#include "gpu/model/bucket_codec.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/step_wire.h"
#include "services/trainer/rpc_batch.h"

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
                                           transport::RpcNode* rpc, const cluster::Placement* placement,
                                           const HostPeers* peers, proto::DType wire, absl::Duration timeout)
    : config_(config),
      backend_(backend),
      rpc_(rpc),
      placement_(placement),
      peers_(peers),
      wire_(wire),
      timeout_(timeout) {}

RemoteExpertExecutor::RemoteExpertExecutor(const gpu::ModelConfig& config, gpu::Backend* backend,
                                           transport::RpcNode* rpc, const cluster::Placement* placement,
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

absl::StatusOr<proto::Envelope::Builder> RemoteExpertExecutor::AddBucketCall(
    const gpu::ExpertCall& call, int expert, int rows, const float* device_rows, proto::MessageKind kind,
    const char* what, std::vector<OutgoingCall>* calls) {
  absl::StatusOr<transport::Frame> frame =
      gpu::EncodeDeviceFloats(backend_, device_rows, int64_t{rows} * config_.d_model, wire_);
  if (!frame.ok()) return frame.status();
  // The step whose holders serve the call: an evaluation reads version v, as step v + 1 does.
  const uint64_t step = call.training ? static_cast<uint64_t>(call.step) : eval_version_ + 1;
  const int host = placement_->HostOfExpertMicroBatch(step, call.layer, expert, call.micro_batch);
  OutgoingCall& c = calls->emplace_back();
  c.to = {peers_->Peer(host), transport::Route::kConnected};
  c.route = [this, step, layer = call.layer, expert, micro_batch = call.micro_batch] {
    return transport::Address{peers_->Peer(placement_->HostOfExpertMicroBatch(step, layer, expert, micro_batch)),
                              transport::Route::kConnected};
  };
  c.what = Where(call, expert, host, what);
  c.data.push_back(*std::move(frame));
  auto env = cluster::InitEnvelope(*c.header, kind);
  env.setPlacementEpoch(placement_->epoch());
  return env;
}

void RemoteExpertExecutor::FinishBucketCall(proto::Envelope::Builder env, int rows, const char* tensor,
                                            proto::TensorRole role, OutgoingCall& c) {
  transport::SetTensor(env.initTensors(1)[0], tensor, role, wire_,
                       {static_cast<uint64_t>(rows), static_cast<uint64_t>(config_.d_model)});
  bytes_sent_ += CallBytes(c);
}

absl::Status RemoteExpertExecutor::SendAndReceive(std::vector<OutgoingCall>& calls,
                                                  const std::vector<std::pair<int, float*>>& into,
                                                  const char* tensor) {
  auto replies = CallAll(*rpc_, calls, absl::Now() + timeout_, guard_);
  for (size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].ok()) return replies[i].status();
    const transport::DecodedMessage& r = *replies[i];
    const int64_t n = int64_t{into[i].first} * config_.d_model;
    auto tensors = r.envelope().getTensors();
    if (tensors.size() != 1) return absl::InternalError(absl::StrCat(calls[i].what, ": reply without ", tensor));
    if (absl::Status s = gpu::DecodeDeviceFloats(backend_, r.data(0), tensors[0].getDtype(), n, into[i].second);
        !s.ok()) {
      return absl::InternalError(absl::StrCat(calls[i].what, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status RemoteExpertExecutor::Forward(const gpu::ExpertCall& call, absl::Span<const gpu::ExpertBucket> buckets) {
  std::vector<OutgoingCall> calls;
  std::vector<std::pair<int, float*>> into;  // (rows, device outputs) of each call
  for (const gpu::ExpertBucket& b : buckets) {
    if (b.rows == 0) continue;
    absl::StatusOr<proto::Envelope::Builder> env =
        AddBucketCall(call, b.expert, b.rows, b.in, proto::MessageKind::EXPERT_FORWARD, "forward", &calls);
    if (!env.ok()) return env.status();
    auto body = env->initBody().initAs<proto::expert::ExpertForwardRequest>();
    SetBucket(body.initBucket(), call, b.expert);
    body.setTokenCount(static_cast<uint32_t>(b.rows));
    body.setDModel(static_cast<uint32_t>(config_.d_model));
    body.setVersion(call.training ? static_cast<uint64_t>(call.step - 1) : eval_version_);
    body.setTraining(call.training);
    body.setDropoutSeed(call.seed);
    FinishBucketCall(*env, b.rows, "activations", proto::TensorRole::ACTIVATIONS, calls.back());
    into.emplace_back(b.rows, b.out);
  }
  return SendAndReceive(calls, into, "outputs");
}

absl::Status RemoteExpertExecutor::Backward(const gpu::ExpertCall& call,
                                            absl::Span<const gpu::ExpertBucketGrad> buckets) {
  std::vector<OutgoingCall> calls;
  std::vector<std::pair<int, float*>> into;  // (rows, device input gradients) of each call
  for (const gpu::ExpertBucketGrad& b : buckets) {
    if (b.rows == 0) continue;
    absl::StatusOr<proto::Envelope::Builder> env =
        AddBucketCall(call, b.expert, b.rows, b.dout, proto::MessageKind::EXPERT_BACKWARD, "backward", &calls);
    if (!env.ok()) return env.status();
    auto body = env->initBody().initAs<proto::expert::ExpertBackwardRequest>();
    SetBucket(body.initBucket(), call, b.expert);
    body.setTokenCount(static_cast<uint32_t>(b.rows));
    body.setDModel(static_cast<uint32_t>(config_.d_model));
    body.setVersion(static_cast<uint64_t>(call.step - 1));
    FinishBucketCall(*env, b.rows, "outputGrad", proto::TensorRole::OUTPUT_GRAD, calls.back());
    into.emplace_back(b.rows, b.din);
  }
  return SendAndReceive(calls, into, "inputGrad");
}

}  // namespace sy::trainer
