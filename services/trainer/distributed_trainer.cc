// One trainer of a distributed run: its connections, the hosts as its parameter source, rollbacks
// (see distributed_trainer.h).
#include "services/trainer/distributed_trainer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "common/transport/faulty_transport.h"
#include "common/transport/zmq_transport.h"
#include "gpu/model/bucket_codec.h"
#include "gpu/model/optimizer.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/peer_roles.h"
#include "services/trainer/replica_check.h"

namespace sy::trainer {
namespace {

// Failures a lost host, a rollback or moved actors explain: in coordinator mode the
// trainer waits for the rollback that follows. While actors move (join, drain,
// rebalance) the new table reaches the hosts before the trainers' rollback: a host
// answers NotFound for an actor it no longer holds and FailedPrecondition for a
// step it was restored away from.
bool RollbackExplains(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsAborted(s) || absl::IsDeadlineExceeded(s) || absl::IsNotFound(s) ||
         absl::IsFailedPrecondition(s);
}

// How long a stale-epoch refusal waits for the rollback that follows moved actors
// (the restore of a checkpoint comes first) before refreshing and resending.
constexpr absl::Duration kRollbackAfterMove = absl::Seconds(5);

}  // namespace

DistributedTrainer::~DistributedTrainer() {
  if (rpc_ != nullptr) rpc_->Close();
}

absl::StatusOr<std::unique_ptr<DistributedTrainer>> DistributedTrainer::Create(const cluster::ClusterTrainerOptions& options) {
  const cluster::TrainerOptions& o = options.base;
  absl::StatusOr<proto::DType> wire = gpu::ParseWireDType(o.wire_dtype);
  if (!wire.ok()) return wire.status();
  absl::StatusOr<TrainerBase> base = LoadTrainerBase(o);
  if (!base.ok()) return base.status();

  std::unique_ptr<DistributedTrainer> t(new DistributedTrainer());
  t->options_ = options;
  t->base_ = *std::move(base);
  const gpu::ModelConfig& config = t->base_.config;
  t->slot_ = {options.trainer_index, options.num_trainers};
  t->most_trainers_ = options.num_trainers;
  t->num_dense_shards_ = static_cast<int>(cluster::DenseShardParams(gpu::ParamInfos(config)).size());

  const std::string id = absl::StrCat("trainer-", options.trainer_index);
  t->id_ = id;
  transport::ZmqOptions zmq;
  zmq.node_id = id;
  absl::StatusOr<transport::CurveKeys> curve = cluster::LoadNodeCurve(options.security, id);
  if (!curve.ok()) return curve.status();
  zmq.curve = *curve;
  absl::StatusOr<std::unique_ptr<transport::ZmqTransport>> zt = transport::ZmqTransport::Create(zmq);
  if (!zt.ok()) return zt.status();
  t->peers_ = std::make_unique<HostPeers>(options.hosts);
  for (size_t i = 0; i < options.hosts.size(); ++i) {
    if (absl::Status s = (*zt)->Connect(t->peers_->Peer(static_cast<int>(i)), options.hosts[i]); !s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat("connecting to host ", i, " at ", options.hosts[i], ": ", s.message()));
    }
  }
  absl::StatusOr<std::unique_ptr<transport::Transport>> transport =
      transport::WithFaultsFromFlag(*std::move(zt), options.faults);
  if (!transport.ok()) return transport.status();
  transport::RpcOptions rpc_options;
  rpc_options.attempt_timeout = absl::Seconds(1);
  rpc_options.max_attempts = 8;
  absl::StatusOr<std::unique_ptr<transport::RpcNode>> rpc =
      transport::RpcNode::Create(*std::move(transport), rpc_options, nullptr);
  if (!rpc.ok()) return rpc.status();
  t->rpc_ = *std::move(rpc);

  const absl::Duration timeout = absl::Seconds(options.rpc_timeout_s);
  if (options.coordinator.empty()) {
    t->placement_ = std::make_unique<cluster::LivePlacement>(
        std::make_unique<cluster::StaticPlacement>(config, static_cast<int>(options.hosts.size())));
  } else {
    cluster::CoordinatorLinkOptions link;
    link.node_id = id;
    link.curve = zmq.curve;
    link.coordinator = options.coordinator;
    link.shape = cluster::ModelShapeOf(config);
    DistributedTrainer* self = t.get();
    absl::StatusOr<std::unique_ptr<cluster::CoordinatorLink>> joined = cluster::CoordinatorLink::Start(
        link, [self] { return self->steps_done_.load(); },
        [self](transport::DecodedMessage request, transport::Responder responder) {
          self->OnControl(std::move(request), std::move(responder));
        });
    if (!joined.ok()) return joined.status();
    t->coordinator_ = *std::move(joined);
    absl::StatusOr<cluster::DecodedTable> table = t->coordinator_->WaitForTable(timeout);
    if (!table.ok()) return table.status();
    // The hosts of --hosts, as the coordinator knows them: a later table naming
    // another endpoint for one means it came back there. Hosts beyond --hosts
    // (joined before this trainer started) are connected now.
    t->peers_->AdoptInitial(table->endpoints);
    // FollowTable replaces the static rule with the table's placement at once.
    t->placement_ = std::make_unique<cluster::LivePlacement>(
        std::make_unique<cluster::StaticPlacement>(config, static_cast<int>(options.hosts.size())));
    if (absl::Status s = t->FollowTable(*table); !s.ok()) return s;
  }
  t->executor_ = std::make_unique<RemoteExpertExecutor>(config, t->base_.backend.get(), t->rpc_.get(),
                                                        t->placement_.get(), t->peers_.get(), *wire, timeout);
  t->dense_ = std::make_unique<DenseParamClient>(config, t->rpc_.get(), t->placement_.get(), t->peers_.get(), id,
                                                 timeout);
  t->dense_->set_bf16(o.dense_wire_dtype == "bf16");
  t->steps_ = std::make_unique<StepClient>(t->rpc_.get(), t->peers_.get(), o.micro_batches, id, timeout);
  if (t->coordinator_ != nullptr) {
    DistributedTrainer* self = t.get();
    t->executor_->set_guard(self);
    t->dense_->set_guard(self);
    t->steps_->set_guard(self, [self](uint64_t step) {
      return cluster::HostsInUse(*self->placement_, self->base_.config, self->num_dense_shards_, step);
    });
  }
  absl::StatusOr<std::unique_ptr<TrainerCore>> core = TrainerCore::Create(o, t->base_, t->executor_.get());
  if (!core.ok()) return core.status();
  t->core_ = *std::move(core);
  // Step 1 computes with the initial weights as later steps do with pulled ones: rounded.
  if (o.dense_wire_dtype == "bf16") gpu::RoundBf16DenseWire(&t->core_->model().params());
  // Dense gradients go out stage by stage during backward (DenseParamClient::GradsReady).
  t->core_->model().set_grad_listener(t->dense_.get());
  SY_LOG(INFO) << id << " of " << options.num_trainers << ": " << config.DebugString() << ", "
               << options.hosts.size() << " hosts, wire " << o.wire_dtype << ", dense wire " << o.dense_wire_dtype;
  return t;
}

std::vector<int> DistributedTrainer::BeginStep(int64_t) {
  dense_->BeginStep(DenseNodesOf(slot_, options_.base.micro_batches));
  return MicroBatchesOf(slot_, options_.base.micro_batches);
}

absl::Status DistributedTrainer::AddMicroBatch(int64_t /*step*/, int /*m*/, const gpu::ParamBlock& /*grads*/,
                                               cluster::MicroBatchStatsValue& stats) {
  // The model pushed the dense gradients during backward (set_grad_listener).
  stats.bytes_sent = executor_->TakeBytesSent() + dense_->TakeBytesSent();
  return absl::OkStatus();
}

absl::Status DistributedTrainer::Apply(int64_t step, const std::vector<cluster::MicroBatchStatsValue>& mine,
                                       std::optional<AppliedStep>* applied) {
  const cluster::TrainerOptions& o = options_.base;
  // The pull goes out first and waits at the hosts: each shard answers as soon as it
  // applied the step, while the trainers still commit and the leader gathers and applies.
  PendingCalls pull = dense_->StartPull(static_cast<uint64_t>(step));
  if (absl::Status s = dense_->Flush(); !s.ok()) return s;  // the pushes overlapped the later micro-batches
  if (absl::Status s = steps_->Commit(static_cast<uint64_t>(step), mine); !s.ok()) return s;
  if (coordinator_ != nullptr) ReportLoad(step, mine);
  if (leader()) {
    absl::StatusOr<GatherResult> gathered = steps_->GatherNorms(static_cast<uint64_t>(step));
    if (!gathered.ok()) return gathered.status();
    double squared = 0;
    for (const gpu::GradSegment& seg : gpu::GradSegments(core_->model().params().infos())) {
      auto it = gathered->squares.find({seg.param_index, seg.expert});
      if (it == gathered->squares.end()) {
        return absl::InternalError(absl::StrCat("step ", step, ": no host reported the gradient norm of parameter ",
                                                seg.param_index, " expert ", seg.expert));
      }
      squared += it->second;
    }
    const float scale = gpu::ClipScale(gpu::GradNormFromSquares(squared), static_cast<float>(o.clip));
    const float lr = gpu::LearningRate(step, o.steps, o.warmup, static_cast<float>(o.lr));
    if (static_cast<int>(gathered->stats.size()) != o.micro_batches) {
      return absl::InternalError(absl::StrCat("step ", step, ": stats of ", gathered->stats.size(), " micro-batches, ",
                                              "expected ", o.micro_batches));
    }
    // The step's metrics before its apply: when a host dies during the apply and the
    // survivors applied it (a failover rolls back to this very step), they are recorded.
    *applied = SumMicroBatches(step, gathered->stats, o.micro_batches);
    uint64_t bytes = 0;
    for (const cluster::MicroBatchStatsValue& s : gathered->stats) bytes += s.bytes_sent;
    (*applied)->metrics.bytes_sent = static_cast<int64_t>(bytes);
    if (absl::Status s = steps_->Apply(static_cast<uint64_t>(step), scale, lr); !s.ok()) return s;
  }
  return dense_->FinishPull(static_cast<uint64_t>(step), pull, &core_->model().params());
}

void DistributedTrainer::ReportLoad(int64_t step, const std::vector<cluster::MicroBatchStatsValue>& mine) {
  std::vector<std::vector<int64_t>> tokens;
  for (const cluster::MicroBatchStatsValue& v : mine) {
    if (tokens.empty()) tokens.assign(v.expert_counts.size(), {});
    for (size_t l = 0; l < v.expert_counts.size() && l < tokens.size(); ++l) {
      tokens[l].resize(std::max(tokens[l].size(), v.expert_counts[l].size()));
      for (size_t e = 0; e < v.expert_counts[l].size(); ++e) tokens[l][e] += v.expert_counts[l][e];
    }
  }
  // Load is advice for rebalancing: a coordinator that is away must not stop training.
  if (absl::Status s = coordinator_->ReportLoad(static_cast<uint64_t>(step), tokens); !s.ok()) {
    SY_LOG(WARNING) << "load report of step " << step << ": " << s;
  }
}

absl::StatusOr<double> DistributedTrainer::Validate(int64_t step) {
  executor_->set_eval_version(static_cast<uint64_t>(step));
  absl::StatusOr<double> loss = core_->ValidationLoss();
  if (loss.ok()) executor_->TakeBytesSent();  // validation traffic is not a training step's
  return loss;
}

absl::StatusOr<std::string> DistributedTrainer::FinalChecksum(RunResult* result) {
  // The leader pulls every expert: its replica then holds the whole model.
  const cluster::TrainerOptions& o = options_.base;
  if (absl::Status s = dense_->PullExperts(static_cast<uint64_t>(o.steps), &core_->model().params()); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> checksum = core_->FinishModel();
  if (!checksum.ok()) return checksum.status();
  absl::StatusOr<ReplicaCheck> replicas = CheckReplicas(base_.config, *placement_, *steps_, id_);
  if (!replicas.ok()) return replicas.status();
  result->replicated_actors = replicas->replicated_actors;
  result->replica_mismatches = replicas->replica_mismatches;
  return checksum;
}

void DistributedTrainer::OnControl(transport::DecodedMessage request, transport::Responder responder) {
  if (absl::Status s = cluster::CheckSenderRole(cluster::Door::kTrainer, request.envelope().getKind(),
                                                request.message(), nullptr);
      !s.ok()) {
    SY_LOG(WARNING) << id_ << ": " << s;
    return responder.Fail(s);
  }
  if (request.envelope().getKind() != proto::MessageKind::TRAINER_CONTROL) {
    return responder.Fail(absl::InvalidArgumentError(
        absl::StrCat(id_, " answers only trainerControl on its coordinator link, not message kind ",
                     static_cast<int>(request.envelope().getKind()))));
  }
  auto body = request.Body<proto::coordinator::TrainerControlRequest>();
  if (!body.ok()) return responder.Fail(body.status());
  if (body->isStop()) {
    const std::string reason = body->getReason().size() > 0 ? body->getReason().cStr() : "no reason given";
    SY_LOG(ERROR) << id_ << ": the coordinator stops the run at step " << steps_done_.load() << ": " << reason;
    rollbacks_.PostStop(reason);
    capnp::MallocMessageBuilder b;
    cluster::InitBody<proto::coordinator::TrainerControlReply>(b, proto::MessageKind::TRAINER_CONTROL,
                                                                   body->getEpoch())
        .setStep(steps_done_.load());
    return responder.Reply(b);
  }
  absl::StatusOr<RollbackOrder> order = DecodeRollback(*body, options_.base.steps);
  if (!order.ok()) {
    SY_LOG(WARNING) << id_ << ": refused trainer control: " << order.status();
    return responder.Fail(order.status());
  }
  const uint64_t epoch = order->epoch;
  SY_LOG(INFO) << id_ << ": rollback order to step " << order->step << " (checkpoint " << order->checkpoint_id
               << ", epoch " << epoch << ") at step " << steps_done_.load() << ": aborting the running step";
  if (absl::Status s = rollbacks_.Post(*std::move(order)); !s.ok()) return responder.Fail(s);
  capnp::MallocMessageBuilder b;
  cluster::InitBody<proto::coordinator::TrainerControlReply>(b, proto::MessageKind::TRAINER_CONTROL, epoch)
      .setStep(steps_done_.load());
  responder.Reply(b);
}

absl::Status DistributedTrainer::RefreshPlacement(uint64_t min_epoch) {
  if (coordinator_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "a host asked for placement epoch ", min_epoch, " but this trainer has no --coordinator to refresh from"));
  }
  // The rollback replaces the table itself (and aborts the batch that asked); a
  // placement change without one only costs this wait. The coordinator gives a trainer
  // no table from a recovery's start until it acknowledged its rollback, so a table at
  // the epoch asked for means no rollback is on its way (actors moved live): taken at once.
  if (rollbacks_.aborted()) return absl::OkStatus();
  absl::StatusOr<cluster::DecodedTable> now = coordinator_->WaitForTable(absl::ZeroDuration(), min_epoch);
  if (now.ok()) return FollowTable(*now);
  if (rollbacks_.Await(kRollbackAfterMove)) return absl::OkStatus();
  return RefreshTo(min_epoch);
}

absl::Status DistributedTrainer::RefreshTo(uint64_t min_epoch) {
  absl::StatusOr<cluster::DecodedTable> table =
      coordinator_->WaitForTable(absl::Seconds(options_.recovery_timeout_s), min_epoch);
  if (!table.ok()) return table.status();
  return FollowTable(*table);
}

absl::Status DistributedTrainer::FollowTable(const cluster::DecodedTable& table) {
  absl::StatusOr<std::vector<HostPeers::Change>> changes =
      peers_->Follow(table.endpoints, [this](const std::string& peer, const std::string& endpoint) {
        return rpc_->transport().Connect(peer, endpoint);
      });
  if (!changes.ok()) return changes.status();
  for (const HostPeers::Change& c : *changes) {
    SY_LOG(INFO) << id_ << ": " << c.host << (c.joined ? " joined at " : " is now at ") << c.endpoint;
  }
  absl::StatusOr<std::unique_ptr<cluster::CoordinatorPlacement>> placement =
      cluster::CoordinatorPlacement::Create(base_.config, num_dense_shards_, peers_->size(), table);
  if (!placement.ok()) return placement.status();
  SY_LOG(INFO) << id_ << ": placement epoch " << (*placement)->epoch() << " from the coordinator, "
               << peers_->size() << " hosts known";
  placement_->Replace(*std::move(placement));
  return absl::OkStatus();
}

absl::StatusOr<bool> DistributedTrainer::Rollback(const RollbackOrder& order, RunRecords& records) {
  SY_LOG(INFO) << id_ << ": rollback to step " << order.step << " (checkpoint " << order.checkpoint_id
               << ", epoch " << order.epoch << "): replaying";
  // Pushes of the abandoned step: their answers no longer matter, and one to a lost host would never come.
  dense_->Abandon();
  if (!order.trainers.empty()) {
    absl::StatusOr<TrainerSlot> slot = SlotIn(order.trainers, id_);
    if (!slot.ok()) {
      SY_LOG(INFO) << id_ << ": not in the live trainer set [" << absl::StrJoin(order.trainers, ",")
                   << "]: exiting";
      return false;
    }
    if (slot->index != slot_.index || slot->count != slot_.count) {
      SY_LOG(INFO) << id_ << ": now trainer " << slot->index << " of " << slot->count;
    }
    slot_ = *slot;
    most_trainers_ = std::max(most_trainers_, slot_.count);
  }
  if (absl::Status s = RefreshTo(order.epoch); !s.ok()) return s;
  const int64_t kept = static_cast<int64_t>(order.step);
  if (leader()) {
    // When the leader is gone and this trainer leads now, it continues the records the
    // old leader left, from the restored step on (the replay writes the rest).
    absl::StatusOr<bool> took_over = records.TakeOver(kept);
    if (!took_over.ok()) return took_over.status();
    if (*took_over) SY_LOG(INFO) << id_ << ": now the leader: metrics.jsonl continues after step " << kept;
  }
  if (absl::Status s = records.DropAfter(kept, order.failed_at_unix_ms); !s.ok()) return s;
  // The hosts hold version S again: so must this replica's dense parameters.
  if (absl::Status s = dense_->Pull(order.step, &core_->model().params()); !s.ok()) return s;
  steps_done_.store(order.step);
  return true;
}

absl::Status DistributedTrainer::AwaitRecovery(int64_t step, const absl::Status& failure) {
  const absl::Status error(failure.code(),
                           absl::StrCat("trainer ", options_.trainer_index, ", step ", step, ": ", failure.message()));
  if (coordinator_ == nullptr || !RollbackExplains(failure)) return error;
  if (rollbacks_.aborted()) return absl::OkStatus();
  SY_LOG(WARNING) << error << "; waiting up to " << options_.recovery_timeout_s
                  << " s for the coordinator to roll back";
  if (rollbacks_.Await(absl::Seconds(options_.recovery_timeout_s))) return absl::OkStatus();
  return absl::Status(failure.code(), absl::StrCat(error.message(), "; no rollback from the coordinator within ",
                                                   options_.recovery_timeout_s, " s (--recovery_timeout_s)"));
}

absl::StatusOr<LoopTurn> DistributedTrainer::NextTurn(RunRecords& records) {
  while (true) {
    if (std::optional<std::string> why = rollbacks_.stopped()) {
      return absl::AbortedError(absl::StrCat(id_, ": the coordinator stopped the run after step ", steps_done_.load(),
                                             ": ", *why));
    }
    std::optional<RollbackOrder> order = rollbacks_.Take();
    if (!order) return LoopTurn{};
    const int64_t step = static_cast<int64_t>(order->step);
    absl::StatusOr<bool> stay = Rollback(*order, records);
    if (!stay.ok()) {
      if (absl::Status s = AwaitRecovery(step + 1, stay.status()); !s.ok()) return s;
      continue;
    }
    return LoopTurn{*stay ? LoopTurn::kReplay : LoopTurn::kLeave, step};
  }
}

absl::StatusOr<RunResult> DistributedTrainer::Run(std::ostream& progress, TrainerMetrics* live) {
  absl::StatusOr<RunResult> result = RunSteps(progress, live);
  // A finished trainer says so: the coordinator must not take its silence for a failure.
  if (result.ok() && coordinator_ != nullptr) coordinator_->Leave(steps_done_.load());
  return result;
}

absl::StatusOr<RunResult> DistributedTrainer::RunSteps(std::ostream& progress, TrainerMetrics* live) {
  const cluster::TrainerOptions& o = options_.base;
  absl::StatusOr<RunRecords> records = RunRecords::Open(o, leader(), progress);
  if (!records.ok()) return records.status();
  if (options_.resume_step > 0) {
    // The hosts were restored to a checkpoint: start from its dense parameters.
    if (absl::Status s = dense_->Pull(static_cast<uint64_t>(options_.resume_step), &core_->model().params());
        !s.ok()) {
      return s;
    }
    steps_done_.store(static_cast<uint64_t>(options_.resume_step));
    SY_LOG(INFO) << "resuming after step " << options_.resume_step;
  }
  return RunTraining(o, *this, *records, options_.resume_step + 1, live);
}

}  // namespace sy::trainer
