// The distributed step loop (see distributed_trainer.h).
#include "services/trainer/distributed_trainer.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "common/transport/faulty_transport.h"
#include "common/transport/zmq_transport.h"
#include "gpu/model/optimizer.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/model_options.h"
#include "services/cluster/param_checksum.h"
#include "services/cluster/wire_tensor.h"
#include "services/trainer/batches.h"
#include "services/trainer/progress.h"

namespace sy::trainer {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool IsEvalStep(int64_t step, const cluster::TrainerOptions& o) {
  return step == o.steps || (o.eval_every > 0 && step % o.eval_every == 0);
}

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

// The leader's view of a step, from every micro-batch's stats (summed in
// micro-batch order, as the standalone trainer does).
void FillMetrics(const std::vector<cluster::MicroBatchStatsValue>& stats, int M, StepMetrics* metrics) {
  int64_t tokens = 0, dropped = 0;
  uint64_t bytes = 0;
  for (const cluster::MicroBatchStatsValue& s : stats) {
    metrics->loss += s.loss / M;
    metrics->lb_loss += s.lb / M;
    metrics->z_loss += s.z / M;
    tokens += s.tokens;
    dropped += s.dropped_tokens;
    bytes += s.bytes_sent;
    if (metrics->expert_tokens.empty()) {
      metrics->expert_tokens = s.expert_counts;
      continue;
    }
    for (size_t l = 0; l < s.expert_counts.size() && l < metrics->expert_tokens.size(); ++l) {
      for (size_t e = 0; e < s.expert_counts[l].size() && e < metrics->expert_tokens[l].size(); ++e) {
        metrics->expert_tokens[l][e] += s.expert_counts[l][e];
      }
    }
  }
  const int64_t routed = tokens * static_cast<int64_t>(metrics->expert_tokens.size());
  metrics->dropped_frac = routed > 0 ? static_cast<double>(dropped) / routed : 0;
  metrics->bytes_sent = static_cast<int64_t>(bytes);
  metrics->tokens_per_s = static_cast<double>(tokens);  // divided by the step time by the caller
}

}  // namespace

DistributedTrainer::~DistributedTrainer() {
  if (rpc_ != nullptr) rpc_->Close();
}

absl::StatusOr<std::unique_ptr<DistributedTrainer>> DistributedTrainer::Create(const cluster::ClusterTrainerOptions& options) {
  const cluster::TrainerOptions& o = options.base;
  absl::StatusOr<gpu::ModelConfig> config = cluster::ModelConfigFromOptions(o);
  if (!config.ok()) return config.status();
  absl::StatusOr<proto::DType> wire = cluster::ParseWireDType(o.wire_dtype);
  if (!wire.ok()) return wire.status();
  absl::StatusOr<gpu::Device> device = gpu::Device::Parse(o.device);
  if (!device.ok()) return device.status();
  absl::StatusOr<Corpus> corpus = LoadCorpus(o.data, o.context + 1);
  if (!corpus.ok()) return corpus.status();

  std::unique_ptr<DistributedTrainer> t(new DistributedTrainer());
  t->options_ = options;
  t->slot_ = {options.trainer_index, options.num_trainers};
  t->most_trainers_ = options.num_trainers;
  t->num_dense_shards_ = static_cast<int>(cluster::DenseShardParams(gpu::ParamInfos(*config)).size());
  t->config_ = *config;
  t->corpus_ = *std::move(corpus);
  gpu::BackendOptions backend_options;
  backend_options.num_threads = o.threads;
  absl::StatusOr<std::unique_ptr<gpu::Backend>> backend = gpu::CreateBackend(*device, backend_options);
  if (!backend.ok()) return backend.status();
  t->backend_ = *std::move(backend);

  const std::string id = absl::StrCat("trainer-", options.trainer_index);
  t->id_ = id;
  transport::ZmqOptions zmq;
  zmq.node_id = id;
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
        std::make_unique<cluster::StaticPlacement>(*config, static_cast<int>(options.hosts.size())));
  } else {
    cluster::CoordinatorLinkOptions link;
    link.node_id = id;
    link.coordinator = options.coordinator;
    link.shape = cluster::ModelShapeOf(*config);
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
        std::make_unique<cluster::StaticPlacement>(*config, static_cast<int>(options.hosts.size())));
    if (absl::Status s = t->FollowTable(*table); !s.ok()) return s;
  }
  t->executor_ = std::make_unique<RemoteExpertExecutor>(*config, t->backend_.get(), t->rpc_.get(),
                                                        t->placement_.get(), t->peers_.get(), *wire, timeout);
  t->dense_ = std::make_unique<DenseParamClient>(*config, t->rpc_.get(), t->placement_.get(), t->peers_.get(), id,
                                                 timeout);
  t->steps_ = std::make_unique<StepClient>(t->rpc_.get(), t->peers_.get(), o.micro_batches, id, timeout);
  if (t->coordinator_ != nullptr) {
    DistributedTrainer* self = t.get();
    t->executor_->set_guard(self);
    t->dense_->set_guard(self);
    t->steps_->set_guard(self, [self] {
      return cluster::HostsInUse(*self->placement_, self->config_, self->num_dense_shards_);
    });
  }
  absl::StatusOr<std::unique_ptr<gpu::Model>> model =
      gpu::Model::Create(*config, t->backend_.get(), o.seed, t->executor_.get());
  if (!model.ok()) return model.status();
  t->model_ = *std::move(model);
  absl::StatusOr<std::unique_ptr<gpu::ParamBlock>> grads = t->model_->NewGradBlock();
  if (!grads.ok()) return grads.status();
  t->grads_ = *std::move(grads);
  SY_LOG(INFO) << id << " of " << options.num_trainers << ": " << config->DebugString() << ", "
               << options.hosts.size() << " hosts, wire " << o.wire_dtype;
  return t;
}

absl::Status DistributedTrainer::TrainStep(int64_t step, std::optional<StepMetrics>* applied) {
  const cluster::TrainerOptions& o = options_.base;
  const float grad_scale = 1.0f / static_cast<float>(o.micro_batches);
  std::vector<cluster::MicroBatchStatsValue> mine;
  for (int m : MicroBatchesOf(slot_, o.micro_batches)) {
    absl::StatusOr<MicroBatch> batch = CutTrainMicroBatch(corpus_.train, o.seed, step, m, o.micro_batch, o.context);
    if (!batch.ok()) return batch.status();
    gpu::StepContext ctx;
    ctx.seed = o.seed;
    ctx.step = step;
    ctx.micro_batch = m;
    ctx.training = true;
    absl::StatusOr<gpu::MicroBatchStats> stats =
        model_->ForwardBackward(batch->inputs, batch->targets, o.micro_batch, o.context, ctx, grad_scale, grads_.get());
    if (!stats.ok()) return stats.status();
    if (absl::Status s = dense_->Push(static_cast<uint64_t>(step), static_cast<uint32_t>(m), *grads_); !s.ok()) {
      return s;
    }
    cluster::MicroBatchStatsValue v;
    v.micro_batch = static_cast<uint32_t>(m);
    v.loss = stats->loss;
    v.ce = stats->ce;
    v.lb = stats->lb;
    v.z = stats->z;
    v.tokens = stats->tokens;
    v.dropped_tokens = stats->dropped_tokens;
    v.expert_counts = stats->expert_counts;
    v.bytes_sent = executor_->TakeBytesSent() + dense_->TakeBytesSent();
    mine.push_back(std::move(v));
  }
  if (absl::Status s = dense_->Flush(); !s.ok()) return s;  // the pushes overlapped the later micro-batches
  if (absl::Status s = steps_->Commit(static_cast<uint64_t>(step), mine); !s.ok()) return s;
  if (coordinator_ != nullptr) ReportLoad(step, mine);
  if (leader()) {
    absl::StatusOr<GatherResult> gathered = steps_->GatherNorms(static_cast<uint64_t>(step));
    if (!gathered.ok()) return gathered.status();
    double squared = 0;
    for (const gpu::GradSegment& seg : gpu::GradSegments(model_->params().infos())) {
      auto it = gathered->squares.find({seg.param_index, seg.expert});
      if (it == gathered->squares.end()) {
        return absl::InternalError(absl::StrCat("step ", step, ": no host reported the gradient norm of parameter ",
                                                seg.param_index, " expert ", seg.expert));
      }
      squared += it->second;
    }
    const float scale = gpu::ClipScale(gpu::GradNormFromSquares(squared), static_cast<float>(o.clip));
    const float lr = gpu::LearningRate(step, o.steps, o.warmup, static_cast<float>(o.lr));
    if (absl::Status s = steps_->Apply(static_cast<uint64_t>(step), scale, lr); !s.ok()) return s;
    if (static_cast<int>(gathered->stats.size()) != o.micro_batches) {
      return absl::InternalError(absl::StrCat("step ", step, ": stats of ", gathered->stats.size(), " micro-batches, ",
                                              "expected ", o.micro_batches));
    }
    StepMetrics metrics;
    metrics.step = step;
    FillMetrics(gathered->stats, o.micro_batches, &metrics);
    *applied = std::move(metrics);
  }
  return dense_->Pull(static_cast<uint64_t>(step), &model_->params());
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

absl::StatusOr<double> DistributedTrainer::Validate(uint64_t version) {
  const cluster::TrainerOptions& o = options_.base;
  executor_->set_eval_version(version);
  double total = 0;
  for (int k = 0; k < o.eval_batches; ++k) {
    absl::StatusOr<MicroBatch> batch = CutValMicroBatch(corpus_.val, k, o.eval_batches, o.micro_batch, o.context);
    if (!batch.ok()) return batch.status();
    absl::StatusOr<gpu::MicroBatchStats> stats =
        model_->Evaluate(batch->inputs, batch->targets, o.micro_batch, o.context);
    if (!stats.ok()) return stats.status();
    total += stats->ce;
  }
  executor_->TakeBytesSent();  // validation traffic is not a training step's
  return total / o.eval_batches;
}

absl::StatusOr<std::string> DistributedTrainer::ModelChecksum(uint64_t version) {
  if (absl::Status s = dense_->PullExperts(version, &model_->params()); !s.ok()) return s;
  std::vector<float> host;
  if (absl::Status s = model_->params().CopyToHost(&host); !s.ok()) return s;
  cluster::ParamChecksum checksum;
  checksum.Add(host.data(), host.size());
  return checksum.Hex();
}

absl::Status DistributedTrainer::CheckReplicas(RunResult* result) {
  // Only experts are served by replica: the placement keeps one host per dense shard.
  std::map<std::pair<int, int>, std::vector<int>> replicated;  // (model layer, expert) -> hosts
  std::set<int> hosts;
  for (int l = 0; l < config_.layers; ++l) {
    if (!config_.IsSwitchLayer(l)) continue;
    for (int e = 0; e < config_.experts; ++e) {
      std::vector<int> replicas = placement_->ExpertReplicas(l, e);
      if (replicas.size() < 2) continue;
      hosts.insert(replicas.begin(), replicas.end());
      replicated[{l, e}] = std::move(replicas);
    }
  }
  std::map<int, std::map<std::pair<int, int>, ActorStatusEntry>> held;  // host -> its experts' status
  for (int h : hosts) {
    absl::StatusOr<HostStatus> status = steps_->Status(h);
    if (!status.ok()) {
      return absl::Status(status.status().code(),
                          absl::StrCat("end-of-run replica check: ", status.status().message()));
    }
    for (const ActorStatusEntry& a : status->actors) {
      if (a.is_expert) held[h][{a.layer, a.expert}] = a;
    }
  }
  int mismatches = 0;
  for (const auto& [actor, replicas] : replicated) {
    std::string states;
    bool differ = false;
    const ActorStatusEntry* first = nullptr;
    for (int h : replicas) {
      auto it = held[h].find(actor);
      if (it == held[h].end()) {
        differ = true;
        absl::StrAppend(&states, "; host ", h, " does not hold it");
        continue;
      }
      const ActorStatusEntry& a = it->second;
      absl::StrAppend(&states, "; host ", h, " version ", a.version, absl::StrFormat(" checksum %016x", a.checksum));
      if (first == nullptr) {
        first = &a;
      } else if (a.version != first->version || a.checksum != first->checksum) {
        differ = true;
      }
    }
    if (differ) {
      ++mismatches;
      SY_LOG(ERROR) << id_ << ": replicas of expert " << actor.second << " of layer " << actor.first
                    << " differ at the end of the run" << states;
    }
  }
  result->replicated_actors = static_cast<int>(replicated.size());
  result->replica_mismatches = mismatches;
  if (!replicated.empty()) {
    SY_LOG(INFO) << id_ << ": " << replicated.size() << " replicated experts at the end of the run, " << mismatches
                 << " with replicas that differ";
  }
  return absl::OkStatus();
}

void DistributedTrainer::OnControl(transport::DecodedMessage request, transport::Responder responder) {
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
  // placement change without one only costs this wait.
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
      cluster::CoordinatorPlacement::Create(config_, num_dense_shards_, peers_->size(), table);
  if (!placement.ok()) return placement.status();
  SY_LOG(INFO) << id_ << ": placement epoch " << (*placement)->epoch() << " from the coordinator, "
               << peers_->size() << " hosts known";
  placement_->Replace(*std::move(placement));
  return absl::OkStatus();
}

absl::StatusOr<bool> DistributedTrainer::Rollback(const RollbackOrder& order, Records& records) {
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
  if (records.writer == nullptr && leader() && !options_.base.workdir.empty()) {
    // The leader is gone and this trainer leads now: it continues the records the
    // old leader left, from the restored step on (the replay writes the rest).
    absl::StatusOr<std::unique_ptr<MetricsWriter>> adopted =
        MetricsWriter::Adopt(options_.base.workdir + "/metrics.jsonl", kept, &records.throughput);
    if (!adopted.ok()) return adopted.status();
    records.writer = *std::move(adopted);
    SY_LOG(INFO) << id_ << ": now the leader: metrics.jsonl continues after step " << kept;
  }
  if (records.writer != nullptr) {
    if (absl::Status s = records.writer->DropAfter(kept); !s.ok()) return s;
  }
  auto& curve = records.result->val_curve;
  curve.erase(std::remove_if(curve.begin(), curve.end(), [kept](const auto& p) { return p.first > kept; }),
              curve.end());
  records.throughput.erase(records.throughput.upper_bound(kept), records.throughput.end());
  // The hosts hold version S again: so must this replica's dense parameters.
  if (absl::Status s = dense_->Pull(order.step, &model_->params()); !s.ok()) return s;
  steps_done_.store(order.step);
  return true;
}

absl::Status DistributedTrainer::AwaitRollback(int64_t step, const absl::Status& failure) {
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

absl::StatusOr<RunResult> DistributedTrainer::Run(std::ostream& progress) {
  absl::StatusOr<RunResult> result = RunSteps(progress);
  // A finished trainer says so: the coordinator must not take its silence for a failure.
  if (result.ok() && coordinator_ != nullptr) coordinator_->Leave(steps_done_.load());
  return result;
}

absl::StatusOr<RunResult> DistributedTrainer::RunSteps(std::ostream& progress) {
  const cluster::TrainerOptions& o = options_.base;
  RunResult result;
  Records records;
  records.result = &result;
  if (leader() && !o.workdir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.workdir, ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat("cannot create --workdir ", o.workdir, ": ", ec.message()));
    }
    absl::StatusOr<std::unique_ptr<MetricsWriter>> w = MetricsWriter::Create(o.workdir + "/metrics.jsonl");
    if (!w.ok()) return w.status();
    records.writer = *std::move(w);
  }
  const auto start = std::chrono::steady_clock::now();
  if (options_.resume_step > 0) {
    // The hosts were restored to a checkpoint: start from its dense parameters.
    if (absl::Status s = dense_->Pull(static_cast<uint64_t>(options_.resume_step), &model_->params()); !s.ok()) {
      return s;
    }
    steps_done_.store(static_cast<uint64_t>(options_.resume_step));
    SY_LOG(INFO) << "resuming after step " << options_.resume_step;
  }
  int64_t step = options_.resume_step + 1;
  // The leader's metrics of a step the hosts applied that are not recorded yet. A
  // rollback to exactly that step (a checkpoint of it restored while the leader
  // validated it or pulled its dense parameters) keeps them: the hosts hold its
  // result, so the leader records it (validation included) instead of replaying it.
  std::optional<StepMetrics> unrecorded;
  while (true) {
    if (std::optional<std::string> why = rollbacks_.stopped()) {
      return absl::AbortedError(absl::StrCat(id_, ": the coordinator stopped the run after step ", steps_done_.load(),
                                             ": ", *why));
    }
    if (std::optional<RollbackOrder> order = rollbacks_.Take()) {
      absl::StatusOr<bool> stay = Rollback(*order, records);
      if (!stay.ok()) {
        if (absl::Status s = AwaitRollback(static_cast<int64_t>(order->step) + 1, stay.status()); !s.ok()) return s;
        continue;
      }
      if (!*stay) {
        result.steps = static_cast<int64_t>(order->step);
        return result;
      }
      step = static_cast<int64_t>(order->step) + 1;
      if (unrecorded && unrecorded->step != static_cast<int64_t>(order->step)) unrecorded.reset();
      continue;
    }
    if (unrecorded) {
      StepMetrics& metrics = *unrecorded;
      if (IsEvalStep(metrics.step, o)) {
        absl::StatusOr<double> val = Validate(static_cast<uint64_t>(metrics.step));
        if (!val.ok()) {
          if (absl::Status waited = AwaitRollback(metrics.step, val.status()); !waited.ok()) return waited;
          continue;
        }
        metrics.val_loss = *val;
        result.val_curve.emplace_back(metrics.step, *val);
        result.final_val_loss = *val;
      }
      records.throughput[metrics.step] = metrics.tokens_per_s;
      result.final_loss = metrics.loss;
      progress << FormatProgressLine({metrics.step, o.steps, metrics.loss, metrics.val_loss, metrics.tokens_per_s,
                                      SecondsSince(start)})
               << std::endl;
      if (records.writer) {
        if (absl::Status s = records.writer->Append(metrics); !s.ok()) return s;
      }
      unrecorded.reset();
      continue;
    }
    if (step > o.steps) {
      if (!leader()) break;
      // The checksum pulls every expert: a host lost now still gets a rollback and a replay.
      absl::StatusOr<std::string> checksum = ModelChecksum(static_cast<uint64_t>(o.steps));
      const absl::Status checked = checksum.ok() ? CheckReplicas(&result) : checksum.status();
      if (checked.ok()) {
        result.param_checksum = *checksum;
        break;
      }
      if (absl::Status waited = AwaitRollback(o.steps, checked); !waited.ok()) return waited;
      continue;
    }
    const auto step_start = std::chrono::steady_clock::now();
    std::optional<StepMetrics> applied;
    const absl::Status trained = TrainStep(step, &applied);
    if (applied) {
      applied->tokens_per_s /= SecondsSince(step_start);  // FillMetrics left the token count there
      unrecorded = std::move(applied);
    }
    if (!trained.ok()) {
      if (absl::Status waited = AwaitRollback(step, trained); !waited.ok()) return waited;
      continue;
    }
    steps_done_.store(static_cast<uint64_t>(step));
    ++step;  // the leader records the step (unrecorded) first
  }
  result.steps = o.steps;
  if (!leader()) return result;
  std::vector<double> throughput;
  for (const auto& [s, tokens_per_s] : records.throughput) throughput.push_back(tokens_per_s);
  result.median_tokens_per_s = Median(throughput);
  // Every host and trainer the run used (joined hosts included, trainers that
  // finished or failed before a late rollback too).
  if (absl::Status s = ReportRunEnd(result, o.workdir, peers_->size(), most_trainers_, progress);
      !s.ok()) {
    return s;
  }
  return result;
}

}  // namespace sy::trainer
