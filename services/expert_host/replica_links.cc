// Connections to replica hosts and the gradients sent to them (see replica_links.h).
#include "services/expert_host/replica_links.h"

#include <utility>

#include <capnp/message.h>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "gpu/model/bucket_codec.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"

namespace sy::expert_host {

ReplicaLinks::ReplicaLinks(std::string self, absl::Duration timeout) : self_(std::move(self)), timeout_(timeout) {}

void ReplicaLinks::set_rpc(transport::RpcNode* rpc) {
  absl::MutexLock lock(&mu_);
  rpc_ = rpc;
}

void ReplicaLinks::Connect(const std::string& host, const std::string& endpoint) {
  const std::string name = absl::StrCat(host, "@", endpoint);
  transport::RpcNode* rpc;
  {
    absl::MutexLock lock(&mu_);
    rpc = connected_.count(name) == 0 ? rpc_ : nullptr;
    if (rpc == nullptr) {
      names_[host] = name;
      return;
    }
  }
  absl::Status connected = rpc->transport().Connect(name, endpoint);
  if (!connected.ok() && connected.code() != absl::StatusCode::kAlreadyExists) {
    SY_LOG(ERROR) << "cannot connect to replica host " << host << " at " << endpoint << ": " << connected;
    return;
  }
  absl::MutexLock lock(&mu_);
  connected_.insert(name);
  names_[host] = name;
}

void ReplicaLinks::Send(const cluster::ActorKey& actor, const std::string& peer, uint64_t step, uint64_t epoch,
                        const std::vector<uint32_t>& micro_batches, const std::vector<std::vector<float>>& grads) {
  transport::RpcNode* rpc;
  std::string name;
  {
    absl::MutexLock lock(&mu_);
    rpc = rpc_;
    auto it = names_.find(peer);
    if (it != names_.end()) name = it->second;
  }
  if (rpc == nullptr || name.empty()) {
    SY_LOG(ERROR) << "step " << step << ": no connection to replica host " << peer << " for " << actor.ToString();
    return;
  }
  capnp::MallocMessageBuilder b;
  auto env = cluster::InitEnvelope(b, proto::MessageKind::REPLICA_GRADIENTS, epoch);
  auto body = env.initBody().initAs<proto::expert::ReplicaGradientsRequest>();
  actor.ToProto(body.initActor());
  body.setStep(step);
  body.setSender(self_);
  auto mbs = body.initMicroBatches(static_cast<unsigned>(micro_batches.size()));
  auto tensors = env.initTensors(static_cast<unsigned>(grads.size()));
  std::vector<transport::Frame> frames;
  for (size_t i = 0; i < grads.size(); ++i) {
    mbs.set(static_cast<unsigned>(i), micro_batches[i]);
    transport::SetTensor(tensors[static_cast<unsigned>(i)], "gradient", proto::TensorRole::GRADIENTS,
                         proto::DType::F32, {grads[i].size()});
    frames.push_back(
        gpu::EncodeFloats(grads[i].data(), static_cast<int64_t>(grads[i].size()), proto::DType::F32));
  }
  rpc->CallAsync({name, transport::Route::kConnected}, b, std::move(frames), absl::Now() + timeout_,
                 [actor, peer, step](absl::StatusOr<transport::DecodedMessage> reply) {
                   if (!reply.ok()) {
                     SY_LOG(WARNING) << "step " << step << ": replica host " << peer << " refused the gradients of "
                                     << actor.ToString() << ": " << reply.status();
                   }
                 });
}

}  // namespace sy::expert_host
