// Step protocol calls to every host (see step_client.h).
#include "services/trainer/step_client.h"

#include "absl/base/casts.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "services/trainer/rpc_batch.h"

namespace sy::trainer {
namespace {

// A step request of the placement epoch `epoch` in `c`, its phase left to the caller.
proto::expert::StepRequest::Builder InitStep(OutgoingCall& c, uint64_t epoch) {
  return cluster::InitBody<proto::expert::StepRequest>(*c.header, proto::MessageKind::STEP_COMMIT, epoch);
}

}  // namespace

StepClient::StepClient(transport::RpcNode* rpc, const HostPeers* peers, int num_micro_batches,
                       std::string trainer_id, absl::Duration timeout)
    : rpc_(rpc), peers_(peers), m_(num_micro_batches), trainer_id_(std::move(trainer_id)),
      timeout_(timeout) {}

StepClient::StepClient(transport::RpcNode* rpc, const std::vector<std::string>& hosts, int num_micro_batches,
                       std::string trainer_id, absl::Duration timeout)
    : StepClient(rpc, nullptr, num_micro_batches, std::move(trainer_id), timeout) {
  owned_peers_ = HostPeers::Fixed(hosts);
  peers_ = owned_peers_.get();
}

absl::Status StepClient::Commit(uint64_t step, const std::vector<cluster::MicroBatchStatsValue>& stats) {
  const std::vector<int> targets = Targets(step);
  std::vector<OutgoingCall> calls(targets.size());
  for (size_t k = 0; k < targets.size(); ++k) {
    const int h = targets[k];
    OutgoingCall& c = calls[k];
    c.to = {peers_->Peer(h), transport::Route::kConnected};
    c.what = absl::StrCat("commit of step ", step, " to host ", h);
    auto body = InitStep(c, Epoch()).initCommit();
    body.setStep(step);
    body.setTotalMicroBatches(static_cast<uint32_t>(m_));
    body.setTrainer(trainer_id_);
    auto mbs = body.initMicroBatches(static_cast<unsigned>(stats.size()));
    auto wire = body.initStats(static_cast<unsigned>(stats.size()));
    for (size_t i = 0; i < stats.size(); ++i) {
      mbs.set(static_cast<unsigned>(i), stats[i].micro_batch);
      cluster::StatsToWire(stats[i], wire[static_cast<unsigned>(i)]);
    }
  }
  return FirstError(CallAll(*rpc_, calls, absl::Now() + timeout_, guard_));
}

absl::StatusOr<GatherResult> StepClient::GatherNorms(uint64_t step) {
  const std::vector<int> targets = Targets(step);
  std::vector<OutgoingCall> calls(targets.size());
  for (size_t k = 0; k < targets.size(); ++k) {
    calls[k].to = {peers_->Peer(targets[k]), transport::Route::kConnected};
    calls[k].what = absl::StrCat("norm gather of step ", step, " from host ", targets[k]);
    auto body = InitStep(calls[k], Epoch()).initGatherNorms();
    body.setStep(step);
    body.setTotalMicroBatches(static_cast<uint32_t>(m_));
  }
  auto replies = CallAll(*rpc_, calls, absl::Now() + timeout_, guard_);
  if (absl::Status s = FirstError(replies); !s.ok()) return s;
  GatherResult result;
  std::map<std::pair<uint32_t, int>, int> reported_by;  // segment -> first host that reported it
  for (size_t h = 0; h < replies.size(); ++h) {
    auto body = replies[h]->Body<proto::expert::StepReply>();
    if (!body.ok()) return body.status();
    for (auto seg : body->getSegments()) {
      const std::pair<uint32_t, int> key{seg.getParam(), seg.getExpert()};
      const double squares = seg.getSumSquares();
      // The replicas of an expert report the same segment: counted once, and they must agree bit for bit.
      auto [it, first] = reported_by.emplace(key, targets[h]);
      if (first) {
        result.squares[key] = squares;
      } else if (absl::bit_cast<uint64_t>(result.squares[key]) != absl::bit_cast<uint64_t>(squares)) {
        return absl::InternalError(absl::StrFormat(
            "norm gather of step %d: replicas of parameter %d expert %d diverged: host %d reports a gradient "
            "sum of squares of %.17g, host %d %.17g",
            step, key.first, key.second, it->second, result.squares[key], targets[h], squares));
      }
    }
    if (h == 0) {
      for (auto s : body->getStats()) result.stats.push_back(cluster::StatsFromWire(s));
    }
  }
  return result;
}

absl::Status StepClient::Apply(uint64_t step, float clip_scale, float lr) {
  const std::vector<int> targets = Targets(step);
  std::vector<OutgoingCall> calls(targets.size());
  for (size_t k = 0; k < targets.size(); ++k) {
    calls[k].to = {peers_->Peer(targets[k]), transport::Route::kConnected};
    calls[k].what = absl::StrCat("apply of step ", step, " on host ", targets[k]);
    auto body = InitStep(calls[k], Epoch()).initApply();
    body.setStep(step);
    body.setTotalMicroBatches(static_cast<uint32_t>(m_));
    body.setClipScale(clip_scale);
    body.setLearningRate(lr);
  }
  return FirstError(CallAll(*rpc_, calls, absl::Now() + timeout_, guard_));
}

void StepClient::set_guard(CallGuard* guard, std::function<std::vector<int>(uint64_t step)> in_use) {
  guard_ = guard;
  in_use_ = std::move(in_use);
}

std::vector<int> StepClient::Targets(uint64_t step) const {
  if (in_use_) return in_use_(step);
  std::vector<int> all(static_cast<size_t>(peers_->size()));
  for (size_t h = 0; h < all.size(); ++h) all[h] = static_cast<int>(h);
  return all;
}

uint64_t StepClient::Epoch() const { return guard_ != nullptr ? guard_->epoch() : 0; }

absl::StatusOr<HostStatus> StepClient::Status(int host) {
  if (peers_->Peer(host).empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no host ", host));
  }
  std::vector<OutgoingCall> calls(1);
  calls[0].to = {peers_->Peer(host), transport::Route::kConnected};
  calls[0].what = absl::StrCat("status of host ", host);
  InitStep(calls[0], Epoch()).setStatus();
  auto replies = CallAll(*rpc_, calls, absl::Now() + timeout_);
  if (!replies[0].ok()) return replies[0].status();
  auto body = replies[0]->Body<proto::expert::StepReply>();
  if (!body.ok()) return body.status();
  HostStatus status;
  status.version = body->getVersion();
  status.step_timeouts = body->getStepTimeouts();
  for (uint32_t m : body->getMissingMicroBatches()) status.missing_micro_batches.push_back(m);
  for (auto a : body->getActors()) {
    cluster::ActorStatusValue e;
    absl::StatusOr<cluster::ActorKey> actor = cluster::ActorKey::FromProto(a.getActor());
    if (!actor.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("status of host ", host, ": ", actor.status().message()));
    }
    e.actor = *actor;
    e.version = a.getVersion();
    e.checksum = a.getChecksum();
    e.contributions = a.getContributions();
    status.actors.push_back(e);
  }
  return status;
}

}  // namespace sy::trainer
