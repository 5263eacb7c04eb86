// Connections to replica hosts and the gradients sent to them (see replica_links.h).
#include "services/expert_host/replica_links.h"

#include <algorithm>
#include <utility>

#include <capnp/message.h>

#include "absl/strings/str_cat.h"
#include "common/base/fnv1a.h"
#include "common/log/log.h"
#include "gpu/model/bucket_codec.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/state_chunks.h"

namespace sy::expert_host {

// The pause before the first resend of refused replica gradients, and the longest one.
constexpr absl::Duration kFirstResendPause = absl::Milliseconds(5);
constexpr absl::Duration kLongestResendPause = absl::Milliseconds(200);

// One replica-gradients message, kept whole (the frames share their bytes) so that it
// can be sent again.
struct ReplicaLinks::Outgoing {
  cluster::ActorKey actor;
  std::string peer;
  uint64_t step = 0;
  capnp::MallocMessageBuilder header;
  std::vector<transport::Frame> frames;
  absl::Time deadline;
  absl::Duration pause = kFirstResendPause;
  int refusals = 0;
};

ReplicaLinks::ReplicaLinks(std::string self, absl::Duration timeout, actor::Executor* timers)
    : self_(std::move(self)), timeout_(timeout), timers_(timers) {}

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
                        const std::vector<cluster::MicroBatchSpan>& micro_batches,
                        const std::vector<std::vector<float>>& grads, proto::DType dtype) {
  auto out = std::make_shared<Outgoing>();
  out->actor = actor;
  out->peer = peer;
  out->step = step;
  out->deadline = absl::Now() + timeout_;
  auto env = cluster::InitEnvelope(out->header, proto::MessageKind::REPLICA_GRADIENTS, epoch);
  auto body = env.initBody().initAs<proto::expert::ReplicaGradientsRequest>();
  actor.ToProto(body.initActor());
  body.setStep(step);
  body.setSender(self_);
  const bool spans = std::any_of(micro_batches.begin(), micro_batches.end(),
                                 [](const cluster::MicroBatchSpan& s) { return s.size() != 1; });
  auto mbs = body.initMicroBatches(static_cast<unsigned>(micro_batches.size()));
  auto ends = body.initEnds(spans ? static_cast<unsigned>(micro_batches.size()) : 0u);
  auto tensors = env.initTensors(static_cast<unsigned>(grads.size()));
  for (size_t i = 0; i < grads.size(); ++i) {
    mbs.set(static_cast<unsigned>(i), micro_batches[i].first);
    if (spans) ends.set(static_cast<unsigned>(i), micro_batches[i].end);
    transport::SetTensor(tensors[static_cast<unsigned>(i)], "gradient", proto::TensorRole::GRADIENTS,
                         dtype, {grads[i].size()});
    out->frames.push_back(gpu::EncodeFloats(grads[i].data(), static_cast<int64_t>(grads[i].size()), dtype));
  }
  Attempt(std::move(out));
}

void ReplicaLinks::Attempt(std::shared_ptr<Outgoing> out) {
  auto [rpc, name] = Route(out->peer);
  if (rpc == nullptr) {
    SY_LOG(ERROR) << "step " << out->step << ": no connection to replica host " << out->peer << " for "
                  << out->actor.ToString();
    return;
  }
  rpc->CallAsync({name, transport::Route::kConnected}, out->header, out->frames, out->deadline,
                 [this, out](absl::StatusOr<transport::DecodedMessage> reply) {
                   if (reply.ok()) return;
                   const absl::Duration pause = out->pause;
                   if (absl::IsResourceExhausted(reply.status()) && absl::Now() + pause < out->deadline) {
                     ++out->refusals;
                     out->pause = std::min(2 * pause, kLongestResendPause);
                     timers_->ScheduleAt(actor::Clock::now() + absl::ToChronoNanoseconds(pause),
                                         [this, out] { Attempt(out); });
                     return;
                   }
                   SY_LOG(WARNING) << "step " << out->step << ": replica host " << out->peer
                                   << " refused the gradients of " << out->actor.ToString() << " (after "
                                   << out->refusals << " full-budget refusals): " << reply.status();
                 });
}

std::pair<transport::RpcNode*, std::string> ReplicaLinks::Route(const std::string& host) {
  absl::MutexLock lock(&mu_);
  auto it = names_.find(host);
  if (rpc_ == nullptr || it == names_.end()) return {nullptr, ""};
  return {rpc_, it->second};
}

void ReplicaLinks::SendState(const cluster::ActorKey& actor, const std::string& peer, uint64_t version,
                             std::shared_ptr<const std::string> state, uint64_t chunk_bytes,
                             std::function<void(absl::Status)> done) {
  auto [rpc, name] = Route(peer);
  if (rpc == nullptr) {
    done(absl::FailedPreconditionError(absl::StrCat("no connection to host ", peer, " for the live move of ",
                                                    actor.ToString())));
    return;
  }
  const uint64_t checksum = ChecksumOf(*state);
  const std::vector<cluster::StateChunk> chunks = cluster::SplitState(*state, chunk_bytes);
  const cluster::ChunkAcks acks(chunks.front().count, std::move(done));
  for (const cluster::StateChunk& c : chunks) {
    capnp::MallocMessageBuilder b;
    auto body = cluster::InitBody<proto::expert::LiveStateRequest>(b, proto::MessageKind::LIVE_STATE);
    actor.ToProto(body.initActor());
    body.setSender(self_);
    cluster::FillChunkIn(c, version, state->size(), checksum, body.initChunk());
    std::vector<transport::Frame> frames = cluster::AttachState(b, c.bytes);
    rpc->CallAsync({name, transport::Route::kConnected}, b, std::move(frames), absl::Now() + timeout_,
                   [acks, state](absl::StatusOr<transport::DecodedMessage> r) { acks.Ack(r.status()); });
  }
}

}  // namespace sy::expert_host
