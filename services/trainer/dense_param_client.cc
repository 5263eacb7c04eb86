// Dense gradient pushes and parameter pulls (see dense_param_client.h).
#include "services/trainer/dense_param_client.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "common/transport/envelope_codec.h"
#include "gpu/model/bucket_codec.h"
#include "gpu/model/expert.h"
#include "gpu/model/optimizer.h"
#include "proto/parameter.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/step_wire.h"

namespace sy::trainer {

DenseParamClient::DenseParamClient(const gpu::ModelConfig& config, transport::RpcNode* rpc,
                                   const cluster::Placement* placement, const HostPeers* peers, std::string trainer_id,
                                   absl::Duration timeout)
    : config_(config),
      infos_(gpu::ParamInfos(config)),
      shards_(cluster::DenseShardParams(infos_)),
      shard_of_param_(infos_.size(), -1),
      rpc_(rpc),
      placement_(placement),
      peers_(peers),
      trainer_id_(std::move(trainer_id)),
      timeout_(timeout) {
  for (size_t s = 0; s < shards_.size(); ++s) shard_of_param_[shards_[s]] = static_cast<int>(s);
}

DenseParamClient::DenseParamClient(const gpu::ModelConfig& config, transport::RpcNode* rpc,
                                   const cluster::Placement* placement, const std::vector<std::string>& hosts,
                                   std::string trainer_id, absl::Duration timeout)
    : DenseParamClient(config, rpc, placement, nullptr, std::move(trainer_id), timeout) {
  owned_peers_ = HostPeers::Fixed(hosts);
  peers_ = owned_peers_.get();
}

std::function<transport::Address()> DenseParamClient::ShardRoute(uint64_t step, size_t shard) const {
  return [this, step, shard] {
    return transport::Address{peers_->Peer(placement_->HostOfDenseShardAt(step, static_cast<int>(shard))),
                              transport::Route::kConnected};
  };
}

uint64_t DenseParamClient::TakeBytesSent() {
  const uint64_t b = bytes_sent_;
  bytes_sent_ = 0;
  return b;
}

void DenseParamClient::BeginStep(std::vector<cluster::MicroBatchSpan> nodes) {
  nodes_ = std::move(nodes);
  for (const auto& sum : sums_) {
    if (sum != nullptr) sum->Reset();
  }
}

absl::Status DenseParamClient::GradsReady(const gpu::StepContext& ctx, absl::Span<const uint32_t> params,
                                          const gpu::ParamBlock& grads) {
  std::vector<size_t> shards;
  for (uint32_t p : params) {
    if (p < shard_of_param_.size() && shard_of_param_[p] >= 0) shards.push_back(static_cast<size_t>(shard_of_param_[p]));
  }
  if (shards.empty()) return absl::OkStatus();
  const uint32_t m = static_cast<uint32_t>(ctx.micro_batch);
  cluster::MicroBatchSpan node{m, m + 1};  // a micro-batch outside the share goes alone
  for (const cluster::MicroBatchSpan& n : nodes_) {
    if (n.first <= m && m < n.end) node = n;
  }
  const uint64_t step = static_cast<uint64_t>(ctx.step);
  if (node.size() == 1) {
    std::vector<ShardValues> values;
    for (size_t s : shards) values.push_back({s, grads.data() + infos_[shards_[s]].offset});
    return PushShards(step, node, grads.backend(), values);
  }
  absl::StatusOr<std::vector<ShardValues>> sums = PreSum(node, static_cast<int>(m), shards, grads);
  if (!sums.ok()) return sums.status();
  if (sums->empty()) return absl::OkStatus();
  absl::Status pushed = PushShards(step, node, grads.backend(), *sums);
  for (const ShardValues& v : *sums) sums_[v.shard]->Reset();  // the values are copied into the frames
  return pushed;
}

proto::DType DenseParamClient::DTypeOf(size_t shard) const {
  return bf16_ && gpu::OnBf16DenseWire(infos_[shards_[shard]]) ? proto::DType::BF16 : proto::DType::F32;
}

absl::StatusOr<std::vector<DenseParamClient::ShardValues>> DenseParamClient::PreSum(
    cluster::MicroBatchSpan node, int m, const std::vector<size_t>& shards, const gpu::ParamBlock& grads) {
  sums_.resize(shards_.size());
  std::vector<ShardValues> complete;
  for (size_t s : shards) {
    const gpu::ParamInfo& info = infos_[shards_[s]];
    std::unique_ptr<gpu::GradTree>& sum = sums_[s];
    if (sum == nullptr || sum->num_micro_batches() != static_cast<int>(node.size())) {
      absl::StatusOr<std::unique_ptr<gpu::GradTree>> created =
          gpu::GradTree::Create(grads.backend(), info.numel, static_cast<int>(node.size()));
      if (!created.ok()) return created.status();
      sum = *std::move(created);
      if (DTypeOf(s) == proto::DType::BF16) sum->set_bf16_ranges({{0, info.numel}});  // the host's tree rounds alike
    }
    if (absl::Status st = sum->Add(m - static_cast<int>(node.first), grads.data() + info.offset); !st.ok()) {
      return absl::InternalError(absl::StrCat("pre-sum of shard ", s, " (", info.name, ") micro-batch ", m, ": ",
                                              st.message()));
    }
    if (sum->complete()) complete.push_back({s, *sum->Result()});
  }
  return complete;
}

absl::Status DenseParamClient::PushShards(uint64_t step, cluster::MicroBatchSpan micro_batches,
                                          gpu::Backend* backend, const std::vector<ShardValues>& values) {
  std::vector<OutgoingCall> calls;
  for (const ShardValues& v : values) {
    const size_t s = v.shard;
    const gpu::ParamInfo& info = infos_[shards_[s]];
    const int h = placement_->HostOfDenseShardAt(step, static_cast<int>(s));
    OutgoingCall& c = calls.emplace_back();
    c.to = {peers_->Peer(h), transport::Route::kConnected};
    c.route = ShardRoute(step, s);
    c.what = absl::StrCat("push of step ", step, " micro-batches [", micro_batches.first, ", ", micro_batches.end,
                          ") shard ", s, " (", info.name, ") to host ", h);
    auto env = cluster::InitEnvelope(*c.header, proto::MessageKind::PARAM_PUSH);
    env.setPlacementEpoch(placement_->epoch());
    auto body = env.initBody().initAs<proto::parameter::PushRequest>();
    body.setShard(static_cast<uint32_t>(s));
    body.setStep(step);
    auto mbs = body.initMicroBatches(micro_batches.size());
    for (uint32_t i = 0; i < micro_batches.size(); ++i) mbs.set(i, micro_batches.first + i);
    body.setElementCount(static_cast<uint64_t>(info.numel));
    body.setTrainer(trainer_id_);
    transport::SetTensor(env.initTensors(1)[0], info.name, proto::TensorRole::GRADIENTS, DTypeOf(s),
                         {static_cast<uint64_t>(info.numel)});
    absl::StatusOr<transport::Frame> frame = gpu::EncodeDeviceFloats(backend, v.values, info.numel, DTypeOf(s));
    if (!frame.ok()) return frame.status();
    c.data.push_back(*std::move(frame));
    bytes_sent_ += CallBytes(c);
  }
  pushes_.push_back(PendingCalls::Start(*rpc_, std::move(calls), absl::Now() + timeout_, guard_));
  return absl::OkStatus();
}

absl::Status DenseParamClient::Flush() {
  absl::Status status;
  for (PendingCalls& pending : pushes_) status.Update(FirstError(pending.Wait()));
  pushes_.clear();
  return status;
}

PendingCalls DenseParamClient::StartPull(uint64_t version) {
  std::vector<OutgoingCall> calls;
  for (size_t s = 0; s < shards_.size(); ++s) {
    const int h = placement_->HostOfDenseShardAt(version + 1, static_cast<int>(s));  // read by step version + 1
    OutgoingCall& c = calls.emplace_back();
    c.to = {peers_->Peer(h), transport::Route::kConnected};
    c.route = ShardRoute(version + 1, s);
    c.what = absl::StrCat("pull of shard ", s, " (", infos_[shards_[s]].name, ") version ", version, " from host ", h);
    auto env = cluster::InitEnvelope(*c.header, proto::MessageKind::PARAM_PULL);
    env.setPlacementEpoch(placement_->epoch());
    auto body = env.initBody().initAs<proto::parameter::PullRequest>();
    body.setShard(static_cast<uint32_t>(s));
    body.setVersion(version);
    body.setTarget(proto::parameter::PullTarget::DENSE_SHARD);
    body.setDtype(DTypeOf(s));
  }
  return PendingCalls::Start(*rpc_, std::move(calls), absl::Now() + timeout_, guard_);
}

absl::Status DenseParamClient::FinishPull(uint64_t version, PendingCalls& pending, gpu::ParamBlock* params) {
  const auto replies = pending.Wait();
  const std::vector<OutgoingCall>& calls = pending.calls();
  for (size_t s = 0; s < replies.size(); ++s) {
    if (!replies[s].ok()) return replies[s].status();
    const gpu::ParamInfo& info = infos_[shards_[s]];
    auto body = replies[s]->Body<proto::parameter::PullReply>();
    if (!body.ok()) return body.status();
    if (body->getVersion() != version) {
      return absl::FailedPreconditionError(
          absl::StrCat(calls[s].what, ": the shard answered version ", body->getVersion()));
    }
    if (replies[s]->message().data.size() != 1) return absl::InternalError(calls[s].what + ": no values");
    if (absl::Status st = gpu::DecodeDeviceFloats(params->backend(), replies[s]->data(0), DTypeOf(s), info.numel,
                                                  params->data() + info.offset);
        !st.ok()) {
      return absl::InternalError(absl::StrCat(calls[s].what, ": ", st.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status DenseParamClient::Pull(uint64_t version, gpu::ParamBlock* params) {
  PendingCalls pending = StartPull(version);
  return FinishPull(version, pending, params);
}

absl::Status DenseParamClient::PullExperts(uint64_t version, gpu::ParamBlock* params) {
  const gpu::ExpertLayout layout(config_);
  struct Target {
    int layer, expert;
  };
  std::vector<Target> targets;
  std::vector<OutgoingCall> calls;
  for (int l = 0; l < config_.layers; ++l) {
    if (!config_.IsSwitchLayer(l)) continue;
    for (int e = 0; e < config_.experts; ++e) {
      const int h = placement_->ExpertReplicasAt(version + 1, l, e)[0];
      OutgoingCall& c = calls.emplace_back();
      c.to = {peers_->Peer(h), transport::Route::kConnected};
      c.route = [this, version, l, e] {
        return transport::Address{peers_->Peer(placement_->ExpertReplicasAt(version + 1, l, e)[0]),
                                  transport::Route::kConnected};
      };
      c.what = absl::StrCat("pull of expert (layer ", l, ", expert ", e, ") version ", version, " from host ", h);
      auto env = cluster::InitEnvelope(*c.header, proto::MessageKind::PARAM_PULL);
      env.setPlacementEpoch(placement_->epoch());
      auto body = env.initBody().initAs<proto::parameter::PullRequest>();
      body.setVersion(version);
      body.setTarget(proto::parameter::PullTarget::EXPERT);
      body.setExpertLayer(static_cast<uint32_t>(l));
      body.setExpertIndex(static_cast<uint32_t>(e));
      targets.push_back({l, e});
    }
  }
  auto replies = CallAll(*rpc_, calls, absl::Now() + timeout_, guard_);
  std::vector<float> values(static_cast<size_t>(layout.size()));
  for (size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].ok()) return replies[i].status();
    auto body = replies[i]->Body<proto::parameter::PullReply>();
    if (!body.ok()) return body.status();
    if (body->getVersion() != version) {
      return absl::FailedPreconditionError(absl::StrCat(calls[i].what, ": answered version ", body->getVersion()));
    }
    if (replies[i]->message().data.size() != 1) return absl::InternalError(calls[i].what + ": no values");
    if (absl::Status st = gpu::DecodeFloats(replies[i]->data(0), proto::DType::F32, static_cast<int64_t>(values.size()),
                                       values.data());
        !st.ok()) {
      return absl::InternalError(absl::StrCat(calls[i].what, ": ", st.message()));
    }
    const std::array<float*, 4> slices = layout.ModelSlices(*params, targets[i].layer, targets[i].expert);
    for (size_t k = 0; k < slices.size(); ++k) {
      const gpu::ExpertPart& part = layout.parts()[k];
      if (slices[k] == nullptr) {
        return absl::InternalError(absl::StrCat("model lacks layer", targets[i].layer, ".", part.name));
      }
      if (absl::Status st = params->backend()->CopyHostToDevice(slices[k], values.data() + part.offset,
                                                                part.numel * sizeof(float));
          !st.ok()) {
        return st;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace sy::trainer
