// The expert host's door checks (see request_door.h).
#include "services/expert_host/request_door.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/base/finite.h"
#include "gpu/model/bucket_codec.h"
#include "gpu/model/grad_tree.h"
#include "services/cluster/placement_codec.h"
#include "services/cluster/step_wire.h"

namespace sy::expert_host {
namespace {

// `count` elements of tensor frame `i` in `dtype` (f32 or bf16): it decodes, every value is finite.
absl::StatusOr<std::vector<float>> FiniteFrame(const transport::DecodedMessage& request, unsigned i, int64_t count,
                                               proto::DType dtype, const char* what) {
  std::vector<float> values(static_cast<size_t>(count));
  if (absl::Status s = gpu::DecodeFloats(request.data(i), dtype, count, values.data()); !s.ok()) return s;
  // A NaN or Inf would reach the weights at the next apply: refused at the door, nothing changes.
  if (absl::Status s = sy::RequireFinite(values.data(), values.size(), what); !s.ok()) return s;
  return values;
}

// A gradient vector of `count` elements, f32 or bf16 (--dense_wire_dtype).
bool IsGradientVector(proto::TensorDesc::Reader tensor, int64_t count) {
  return (tensor.getDtype() == proto::DType::F32 || tensor.getDtype() == proto::DType::BF16) &&
         tensor.getShape().size() == 1 && tensor.getShape()[0] == static_cast<uint64_t>(count);
}

}  // namespace

absl::Status StaleEpochError(uint64_t epoch, uint64_t current) {
  absl::Status stale = absl::AbortedError(absl::StrCat("stale placement epoch ", epoch, "; current is ", current));
  stale.SetPayload(transport::kCurrentEpochPayload, absl::Cord(absl::StrCat(current)));
  return stale;
}

RequestDoor::RequestDoor(const HostConfig& config, const ModelActors* model)
    : config_(config), model_(model), self_(absl::StrCat("host-", config.host_index)) {}

absl::Status RequestDoor::CheckEpoch(const transport::DecodedMessage& request, uint64_t current,
                                     bool has_coordinator) {
  const uint64_t epoch = request.envelope().getPlacementEpoch();
  if (epoch == 0 && !has_coordinator) return absl::OkStatus();
  if (epoch >= current && !(epoch == 0 && current > 0)) return absl::OkStatus();
  return StaleEpochError(epoch, current);
}

absl::Time RequestDoor::Deadline(const transport::DecodedMessage& request) {
  return request.deadline() != absl::InfiniteFuture() ? request.deadline() : absl::Now() + absl::Hours(1);
}

absl::Status RequestDoor::CheckMicroBatch(uint32_t micro_batch) const {
  if (micro_batch < static_cast<uint32_t>(config_.micro_batches)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("micro-batch ", micro_batch, " outside [0, ", config_.micro_batches, ")"));
}

absl::StatusOr<std::vector<float>> RequestDoor::BucketFrame(const transport::DecodedMessage& request, uint32_t rows,
                                                            uint32_t d_model, proto::DType* dtype) const {
  if (d_model != static_cast<uint32_t>(config_.model.d_model)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dModel ", d_model, " but the model's d_model is ", config_.model.d_model));
  }
  if (rows > static_cast<uint32_t>(config_.max_bucket_rows)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenCount ", rows, " exceeds the ", config_.max_bucket_rows, " tokens of a micro-batch"));
  }
  auto tensors = request.envelope().getTensors();
  if (tensors.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("expected one tensor frame, got ", tensors.size()));
  }
  auto desc = tensors[0];
  *dtype = desc.getDtype();
  if (*dtype != proto::DType::F32 && *dtype != proto::DType::BF16) {
    return absl::InvalidArgumentError("tensor dtype must be f32 or bf16");
  }
  auto shape = desc.getShape();
  if (shape.size() != 2 || shape[0] != rows || shape[1] != d_model) {
    return absl::InvalidArgumentError(absl::StrCat("tensor shape does not match (tokenCount ", rows, ", dModel ",
                                                   d_model, ")"));
  }
  std::vector<float> values(static_cast<size_t>(rows) * d_model);
  if (absl::Status s = gpu::DecodeFloats(request.data(0), *dtype, static_cast<int64_t>(values.size()),
                                             values.data());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = sy::RequireFinite(values.data(), values.size(), "bucket"); !s.ok()) return s;
  return values;
}

absl::Status RequestDoor::CheckBucket(const transport::DecodedMessage& request,
                                      proto::expert::BucketId::Reader bucket, uint32_t rows, uint32_t d_model,
                                      const transport::Responder& responder, BucketCall* call,
                                      std::vector<float>* values) const {
  if (absl::Status s = CheckMicroBatch(bucket.getMicroBatch()); !s.ok()) return s;
  absl::StatusOr<std::vector<float>> decoded = BucketFrame(request, rows, d_model, &call->dtype);
  if (!decoded.ok()) return decoded.status();
  *values = *std::move(decoded);
  call->micro_batch = bucket.getMicroBatch();
  call->rows = static_cast<int>(rows);
  call->deadline = Deadline(request);
  call->responder = responder;
  return absl::OkStatus();
}

absl::StatusOr<ForwardMsg> RequestDoor::Forward(const transport::DecodedMessage& request,
                                                proto::expert::ExpertForwardRequest::Reader body,
                                                const transport::Responder& responder) const {
  ForwardMsg m;
  m.training = body.getTraining();
  m.step = body.getBucket().getStep();
  m.version = body.getVersion();
  if (m.training && (m.step == 0 || m.version != m.step - 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("training forward of step ", m.step, " must expect version step-1, not ", m.version));
  }
  if (absl::Status s = CheckBucket(request, body.getBucket(), body.getTokenCount(), body.getDModel(), responder, &m,
                                   &m.in);
      !s.ok()) {
    return s;
  }
  m.seed = body.getDropoutSeed();
  return m;
}

absl::StatusOr<BackwardMsg> RequestDoor::Backward(const transport::DecodedMessage& request,
                                                  proto::expert::ExpertBackwardRequest::Reader body,
                                                  const transport::Responder& responder) const {
  BackwardMsg m;
  m.step = body.getBucket().getStep();
  m.version = body.getVersion();
  if (m.step == 0 || m.version != m.step - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("backward of step ", m.step, " must expect version step-1, not ", m.version));
  }
  if (absl::Status s = CheckBucket(request, body.getBucket(), body.getTokenCount(), body.getDModel(), responder, &m,
                                   &m.dout);
      !s.ok()) {
    return s;
  }
  return m;
}

absl::StatusOr<PushMsg> RequestDoor::Push(const transport::DecodedMessage& request,
                                          proto::parameter::PushRequest::Reader body,
                                          const transport::Responder& responder) const {
  const int64_t numel = model_->Size(cluster::ActorKey::Dense(body.getShard()));
  if (body.getElementCount() != static_cast<uint64_t>(numel)) {
    return absl::InvalidArgumentError(absl::StrCat("shard ", body.getShard(), " has ", numel, " elements, not ",
                                                   body.getElementCount()));
  }
  absl::StatusOr<cluster::MicroBatchSpan> span =
      cluster::SpanOfList(body.getMicroBatches(), static_cast<uint32_t>(config_.micro_batches));
  if (!span.ok()) return span.status();
  if (!gpu::GradTree::IsNode(static_cast<int>(span->first), static_cast<int>(span->end), config_.micro_batches)) {
    return absl::InvalidArgumentError(absl::StrCat("a push of micro-batches [", span->first, ", ", span->end,
                                                   ") is not one node of the step's tree over ",
                                                   config_.micro_batches));
  }
  if (body.getStep() == 0) return absl::InvalidArgumentError("push for step 0 (steps start at 1)");
  auto tensors = request.envelope().getTensors();
  if (tensors.size() != 1 || !IsGradientVector(tensors[0], numel)) {
    return absl::InvalidArgumentError(absl::StrCat("push needs one f32 or bf16 tensor of shape (", numel, ")"));
  }
  absl::StatusOr<std::vector<float>> grad =
      FiniteFrame(request, 0, numel, tensors[0].getDtype(), "dense gradient");
  if (!grad.ok()) return grad.status();
  PushMsg m;
  m.bf16 = tensors[0].getDtype() == proto::DType::BF16;
  m.step = body.getStep();
  m.micro_batches = *span;
  m.grad = *std::move(grad);
  m.deadline = Deadline(request);
  m.responder = responder;
  return m;
}

absl::StatusOr<PullMsg> RequestDoor::Pull(const transport::DecodedMessage& request,
                                          proto::parameter::PullRequest::Reader body,
                                          const transport::Responder& responder) {
  if (body.getDtype() != proto::DType::F32 && body.getDtype() != proto::DType::BF16) {
    return absl::InvalidArgumentError(
        absl::StrCat("pull dtype ", static_cast<int>(body.getDtype()), ": expected f32 or bf16"));
  }
  PullMsg m;
  m.version = body.getVersion();
  m.expert = body.getTarget() == proto::parameter::PullTarget::EXPERT;
  m.dtype = m.expert ? proto::DType::F32 : body.getDtype();
  m.deadline = Deadline(request);
  m.responder = responder;
  return m;
}

absl::StatusOr<PeerGradientsMsg> RequestDoor::ReplicaGradients(const transport::DecodedMessage& request,
                                                               proto::expert::ReplicaGradientsRequest::Reader body,
                                                               const cluster::ActorKey& key,
                                                               const transport::Responder& responder) const {
  if (body.getStep() == 0) return absl::InvalidArgumentError("replica gradients for step 0 (steps start at 1)");
  auto mbs = body.getMicroBatches();
  auto tensors = request.envelope().getTensors();
  if (tensors.size() != mbs.size() || request.message().data.size() != mbs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("replica gradients: ", mbs.size(), " micro-batches but ",
                                                   tensors.size(), " tensors and ", request.message().data.size(),
                                                   " frames"));
  }
  const int64_t size = model_->Size(key);
  auto ends = body.getEnds();
  if (ends.size() != 0 && ends.size() != mbs.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica gradients: ", ends.size(), " ends for ", mbs.size(), " contributions"));
  }
  PeerGradientsMsg m;
  m.step = body.getStep();
  m.bf16 = tensors.size() != 0 && tensors[0].getDtype() == proto::DType::BF16;
  m.sender = body.getSender().cStr();
  for (unsigned i = 0; i < mbs.size(); ++i) {
    const cluster::MicroBatchSpan span{mbs[i], ends.size() != 0 ? ends[i] : mbs[i] + 1};
    if (span.end <= span.first || span.end > static_cast<uint32_t>(config_.micro_batches) ||
        !gpu::GradTree::IsNode(static_cast<int>(span.first), static_cast<int>(span.end), config_.micro_batches)) {
      return absl::InvalidArgumentError(absl::StrCat("replica gradients: micro-batches [", span.first, ", ", span.end,
                                                     ") are not one node of the step's tree over ",
                                                     config_.micro_batches));
    }
    if (i > 0 && span.first < m.micro_batches.back().end) {
      return absl::InvalidArgumentError("replica gradients: contributions must ascend without overlapping");
    }
    if (!IsGradientVector(tensors[i], size) || tensors[i].getDtype() != tensors[0].getDtype()) {
      return absl::InvalidArgumentError(absl::StrCat("replica gradients of ", key.ToString(),
                                                     " need f32 or bf16 tensors (one dtype) of shape (", size, ")"));
    }
    absl::StatusOr<std::vector<float>> grad =
        FiniteFrame(request, i, size, tensors[i].getDtype(), "replica gradient");
    if (!grad.ok()) return grad.status();
    m.grads.push_back(*std::move(grad));
    m.micro_batches.push_back(span);
  }
  m.deadline = Deadline(request);
  m.responder = responder;
  return m;
}

absl::Status RequestDoor::CheckStep(uint64_t step, uint32_t total_micro_batches, const HeldActors& held) const {
  if (step == 0) return absl::InvalidArgumentError("step 0 (steps start at 1)");
  if (total_micro_batches != static_cast<uint32_t>(config_.micro_batches)) {
    return absl::InvalidArgumentError(absl::StrCat("totalMicroBatches ", total_micro_batches,
                                                   " but the host trains with M = ", config_.micro_batches));
  }
  return held.CheckNoneAwaitingRestore(step);
}

absl::StatusOr<StepActorMsg> RequestDoor::Step(proto::expert::StepRequest::Reader body, const HeldActors& held,
                                               const transport::Responder& responder) const {
  switch (body.which()) {
    case proto::expert::StepRequest::COMMIT: {
      const auto commit = body.getCommit();
      if (absl::Status s = CheckStep(commit.getStep(), commit.getTotalMicroBatches(), held); !s.ok()) return s;
      CommitMsg m;
      m.step = commit.getStep();
      for (uint32_t mb : commit.getMicroBatches()) {
        if (mb >= static_cast<uint32_t>(config_.micro_batches)) {
          return absl::InvalidArgumentError(absl::StrCat("commit names micro-batch ", mb, " outside [0, M)"));
        }
        m.micro_batches.push_back(mb);
      }
      for (auto s : commit.getStats()) m.stats.push_back(cluster::StatsFromWire(s));
      m.responder = responder;
      return m;
    }
    case proto::expert::StepRequest::GATHER_NORMS: {
      const auto gather = body.getGatherNorms();
      if (absl::Status s = CheckStep(gather.getStep(), gather.getTotalMicroBatches(), held); !s.ok()) return s;
      return GatherMsg{gather.getStep(), responder};
    }
    case proto::expert::StepRequest::APPLY: {
      const auto apply = body.getApply();
      if (absl::Status s = CheckStep(apply.getStep(), apply.getTotalMicroBatches(), held); !s.ok()) return s;
      const float scale = apply.getClipScale(), lr = apply.getLearningRate();
      if (!(scale > 0.0f && scale <= 1.0f) || !(lr >= 0.0f && lr < 1e3f)) {
        return absl::InvalidArgumentError("apply needs 0 < clipScale <= 1 and a finite learningRate >= 0");
      }
      return StepApplyMsg{apply.getStep(), scale, lr, responder};
    }
    case proto::expert::StepRequest::STATUS:
      return HostStatusMsg{responder};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown step request (union member ", static_cast<int>(body.which()), ")"));
}

absl::StatusOr<PlaceMsg> RequestDoor::Placement(proto::coordinator::PlacementRequest::Reader body,
                                                const transport::Responder& responder) const {
  switch (body.which()) {
    case proto::coordinator::PlacementRequest::UPDATE: {
      absl::StatusOr<PlaceMsg> place = PlaceFromTable(body.getUpdate(), responder);
      if (place.ok()) {
        place->drop_open_step = body.getDropOpenStep();
        place->initial = body.getInitial();
      }
      return place;
    }
    case proto::coordinator::PlacementRequest::GET:
      break;
  }
  return absl::InvalidArgumentError("expert host: a placement request must carry an update");
}

absl::StatusOr<PlaceMsg> RequestDoor::PlaceFromTable(proto::coordinator::PlacementTable::Reader update,
                                                     const transport::Responder& responder) const {
  absl::StatusOr<cluster::DecodedTable> table = cluster::TableFromProto(update);
  if (!table.ok()) return table.status();
  PlaceMsg m;
  m.epoch = table->epoch;
  for (const auto& [actor, hosts] : table->entries) {
    if (std::find(hosts.begin(), hosts.end(), self_) == hosts.end()) continue;
    if (absl::Status s = model_->CheckKey(actor); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("placement epoch ", table->epoch, ": ", s.message()));
    }
    std::vector<std::string>& peers = m.mine[actor];
    for (const std::string& host : hosts) {
      if (host == self_) continue;
      if (table->endpoints.count(host) == 0 || table->endpoints.at(host).empty()) {
        return absl::InvalidArgumentError(absl::StrCat("placement epoch ", table->epoch, ": replica host ", host,
                                                       " of ", actor.ToString(), " has no endpoint"));
      }
      peers.push_back(host);
    }
  }
  for (const cluster::LiveMove& live : table->live_moves) {
    m.live_after = live.last_source_step;  // one boundary per table
    if (live.move.from != self_ && live.move.to != self_) continue;
    if (table->endpoints.count(live.move.to) == 0 || live.last_source_step == 0) {
      return absl::InvalidArgumentError(absl::StrCat("placement epoch ", table->epoch, ": live move of ",
                                                     live.move.actor.ToString(), " to ", live.move.to,
                                                     " without an endpoint or a step"));
    }
    m.live.push_back(live);
  }
  m.endpoints = table->endpoints;
  m.responder = responder;
  return m;
}

absl::Status RequestDoor::CheckStreamOut(const transport::DecodedMessage& request,
                                        proto::expert::StreamOut::Reader out) {
  if (out.getDestination() == request.envelope().getSender()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "expert host: streams state only to the coordinator that asks (", request.envelope().getSender().cStr(),
      "), not to ", out.getDestination().cStr(), " at ", out.getDestinationEndpoint().cStr()));
}

absl::Status RequestDoor::CheckChunk(const transport::DecodedMessage& request, proto::expert::ChunkIn::Reader chunk) {
  if (request.message().data.size() != 1) return absl::InvalidArgumentError("a state chunk carries one frame");
  if (chunk.getCount() == 0 || chunk.getIndex() >= chunk.getCount()) {
    return absl::InvalidArgumentError(absl::StrCat("chunk ", chunk.getIndex(), " of ", chunk.getCount()));
  }
  return absl::OkStatus();
}

}  // namespace sy::expert_host
